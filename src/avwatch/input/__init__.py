"""Getting bytes in: open a path or URL with deadlines (UDP/RTP, HLS, HTTP TS, the
SRT/RIST gateway) and the TS tap every byte passes through on its way to the decoder."""
