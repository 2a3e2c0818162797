"""CFlow-AD (Gudovskiy et al., WACV 2022): conditional normalizing flows on multi-scale CNN features."""
