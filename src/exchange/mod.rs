//! Binance: the wire format, the REST client, public-data trade files and the local replay peer.
