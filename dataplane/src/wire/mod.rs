//! Packet views: placeholder.
