"""See the modules of this package; ``daskflow`` re-exports the public names."""
