"""The modem layer: sans-IO AT protocol, modem profiles, serial transport, voice playback."""
