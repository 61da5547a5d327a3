"""``callguard link``: alert delivery to the carers and the fleet link, in its own process
(its own systemd unit, never the screening daemon): a channel that hangs or a library that
crashes here cannot stop a call being screened."""
