"""EfficientAD (Batzner et al., WACV 2024): a student-teacher pair and an autoencoder, small PDN."""
