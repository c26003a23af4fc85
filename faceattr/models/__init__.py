"""Models: backbones with offline weights, task heads, losses and the LightningModule."""
