//! Fuzz the controller config loader (`ControllerConfig::from_yaml`, what the chart's ConfigMap and
//! `--config` feed it): any text must give a config or a `ConfigError`, never a panic or a stack
//! overflow (deeply nested YAML, huge anchors and aliases).
//!
//! Run: `cargo +nightly fuzz run config -- -max_len=65536`
#![no_main]

use ci_healer::config::ControllerConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = ControllerConfig::from_yaml(text);
});
