"""What CallGuard keeps on the SD card: the family's lists, the call log, live state."""
