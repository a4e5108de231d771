"""What the atlas computes over the representations: the most similar galaxies (`neighbors`),
the 2D map (`projection`, UMAP) and trust and anomaly (`scores`)."""
