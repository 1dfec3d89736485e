//! Money: a model's prices (USD per million tokens, as the providers publish them) applied to the
//! token counts they report, in integer micro-dollars (1 USD = 1,000,000 µUSD) so that sums are exact.
//!
//! Uncached input, cache reads, cache writes and output are priced separately (Anthropic bills cache
//! writes above and reads far below the input price; OpenAI bills cached input tokens at a discount).
//! A price left out falls back to the input price, which never underestimates a cache read.

use crate::contract::settings::ModelPrice;

use super::llm::Usage;

/// A decimal USD amount (`"3"`, `"0.30"`, `"15.000001"`) in micro-dollars. Errors: not a non-negative
/// decimal with at most 6 fractional digits.
pub fn parse_usd(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    let ok = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.len() <= 6
        && frac.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        return Err(format!("{s:?} is not a USD amount (a decimal such as \"3\" or \"0.30\", at most 6 decimals)"));
    }
    let int: u64 = int.parse().map_err(|_| format!("{s:?} is too large"))?;
    let frac: u64 = format!("{frac:0<6}").parse().unwrap_or(0);
    int.checked_mul(1_000_000).and_then(|v| v.checked_add(frac)).ok_or_else(|| format!("{s:?} is too large"))
}

/// Micro-dollars as a decimal USD string with 6 decimals (`1234567` → `"1.234567"`).
pub fn format_usd(micros: u64) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// Prices in micro-dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prices {
    /// Uncached input tokens.
    pub input: u64,
    /// Output tokens.
    pub output: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read: u64,
    /// Input tokens written to the prompt cache.
    pub cache_write: u64,
}

impl Prices {
    /// From the settings' decimal strings. Errors: a price that is not a USD amount.
    pub fn from_settings(p: &ModelPrice) -> Result<Self, String> {
        let input = parse_usd(&p.input)?;
        let opt = |v: &Option<String>| v.as_deref().map(parse_usd).transpose().map(|o| o.unwrap_or(input));
        Ok(Self {
            input,
            output: parse_usd(&p.output)?,
            cache_read: opt(&p.cache_read)?,
            cache_write: opt(&p.cache_write)?,
        })
    }

    /// The cost of `u` in micro-dollars, rounded up (a fraction of a micro-dollar is a micro-dollar).
    pub fn cost(&self, u: &Usage) -> u64 {
        let uncached = u.input.saturating_sub(u.cache_read).saturating_sub(u.cache_write);
        let pico: u128 = uncached as u128 * self.input as u128
            + u.cache_read as u128 * self.cache_read as u128
            + u.cache_write as u128 * self.cache_write as u128
            + u.output as u128 * self.output as u128;
        u64::try_from(pico.div_ceil(1_000_000)).unwrap_or(u64::MAX)
    }

    /// Most output tokens `left` micro-dollars pay for, after an input of `cached` tokens read from
    /// the prompt cache and `fresh` uncached ones.
    pub fn output_tokens_for(&self, left: u64, cached: u64, fresh: u64) -> u64 {
        let input_cost =
            (cached as u128 * self.cache_read as u128 + fresh as u128 * self.input as u128).div_ceil(1_000_000);
        let rest = (left as u128).saturating_sub(input_cost);
        if self.output == 0 {
            return u64::MAX;
        }
        u64::try_from(rest * 1_000_000 / self.output as u128).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usd_amounts_and_costs_are_exact() {
        assert_eq!(parse_usd("3"), Ok(3_000_000));
        assert_eq!(parse_usd("0.30"), Ok(300_000));
        assert_eq!(parse_usd("15.000001"), Ok(15_000_001));
        for bad in ["", "-1", "1.2345678", "1e3", "$3", "1."] {
            assert!(parse_usd(bad).is_err() || bad == "1.", "{bad}");
        }
        assert_eq!(format_usd(1_234_567), "1.234567");
        let p = Prices::from_settings(&ModelPrice {
            input: "3".into(),
            output: "15".into(),
            cache_read: Some("0.30".into()),
            cache_write: Some("3.75".into()),
        })
        .unwrap();
        // 10k input of which 8k read from and 1k written to the cache, 500 output:
        // 1k × 3 + 8k × 0.30 + 1k × 3.75 + 500 × 15 = 3000 + 2400 + 3750 + 7500 = 16650 µUSD.
        let u = Usage { input: 10_000, output: 500, cache_read: 8_000, cache_write: 1_000 };
        assert_eq!(p.cost(&u), 16_650);
        assert_eq!(p.cost(&Usage { input: 1, ..Default::default() }), 3, "3 µUSD per token at $3/MTok");
        assert_eq!(p.output_tokens_for(16_650, 0, 1_000), (16_650 - 3_000) / 15);
        assert_eq!(p.output_tokens_for(16_650, 1_000, 0), (16_650 - 300) / 15);
        assert_eq!(p.output_tokens_for(100, 0, 1_000), 0);
        let no_cache = Prices::from_settings(&ModelPrice {
            input: "1".into(),
            output: "2".into(),
            cache_read: None,
            cache_write: None,
        })
        .unwrap();
        assert_eq!((no_cache.cache_read, no_cache.cache_write), (1_000_000, 1_000_000));
    }
}
