"""The modem layer: a sans-IO AT protocol, modem profiles, the serial transport and voice playback."""
