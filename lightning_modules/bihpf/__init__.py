"""BiHPF: bilateral high-pass filters for robust deepfake detection (WACV 2022), and the CNNDetection baseline."""
