"""What every flow stands on and nothing above it: safe media decoding, atomic files, the home folder, SQLite stores,
the dataset cache, torch helpers and built-in sample content. Imports nothing from the rest of SynthGuard."""
