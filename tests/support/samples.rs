//! The bundled sample feeds (samples/, written for the project), for tests that serve them.

pub const LAO_CAI: &str = include_str!("../../samples/baolaocai-thoi-su.rss");
pub const VNEXPRESS: &str = include_str!("../../samples/vnexpress-thoi-su.rss");
pub const YEN_BAI: &str = include_str!("../../samples/baoyenbai-thoi-su.atom");
pub const HA_GIANG: &str = include_str!("../../samples/baohagiang-xa-hoi.rss");
