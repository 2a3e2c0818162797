"""mToFNet (WACV 2022): object anti-spoofing from paired RGB and ToF depth, trained without recaptured images."""
