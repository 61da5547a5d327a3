"""GPIO devices (lights, button, line sensing), built from an injectable pin factory."""
