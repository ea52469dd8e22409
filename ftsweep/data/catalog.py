"""Registry entries for the papers' real datasets (torchvision classes or ImageFolder trees)."""
