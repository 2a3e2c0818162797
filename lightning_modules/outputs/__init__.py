"""What runs write: result tables, pictures, run folders and logger output, and reading another run."""
