"""ckptkit."""
