//! Token counts, each token counted once (see [`Usage`]): one constructor per vendor
//! convention, so that no parser does the subtraction by hand.

use crate::Usage;

impl Usage {
    /// Anthropic's convention: `input` excludes the cache reads and writes.
    pub fn anthropic(input: u64, output: u64, cache_read: u64, cache_creation: u64) -> Self {
        Usage { input, output, cache_read, cache_creation, reasoning: 0 }
    }

    /// OpenAI's convention: `input` includes the cached tokens and `output` includes reasoning.
    pub fn openai(input: u64, cached: u64, output: u64, reasoning: u64) -> Self {
        Self::inclusive(input, cached, 0, output, reasoning)
    }

    /// The OpenTelemetry GenAI convention (OpenAI's, with cache writes): `input` includes the
    /// cache reads and the cache writes, `output` includes reasoning.
    ///
    /// ```
    /// let u = antenna_sdk::Usage::inclusive(1000, 300, 100, 50, 20);
    /// assert_eq!((u.input, u.cache_read, u.cache_creation, u.output, u.reasoning), (600, 300, 100, 30, 20));
    /// assert_eq!(u.total(), 1050);
    /// ```
    pub fn inclusive(input: u64, cache_read: u64, cache_creation: u64, output: u64, reasoning: u64) -> Self {
        Usage {
            input: input.saturating_sub(cache_read).saturating_sub(cache_creation),
            output: output.saturating_sub(reasoning),
            cache_read,
            cache_creation,
            reasoning,
        }
    }

    /// Gemini's convention: `input` includes the cached tokens; thoughts are reported apart.
    pub fn gemini(input: u64, cached: u64, output: u64, thoughts: u64) -> Self {
        Usage {
            input: input.saturating_sub(cached),
            output,
            cache_read: cached,
            cache_creation: 0,
            reasoning: thoughts,
        }
    }

    /// Every token counted once.
    pub fn total(&self) -> u64 {
        self.input
            .saturating_add(self.output)
            .saturating_add(self.cache_read)
            .saturating_add(self.cache_creation)
            .saturating_add(self.reasoning)
    }
}

/// No tokens.
impl Default for Usage {
    fn default() -> Self {
        Usage { input: 0, output: 0, cache_read: 0, cache_creation: 0, reasoning: 0 }
    }
}

/// Adds each count, saturating.
impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.input = self.input.saturating_add(other.input);
        self.output = self.output.saturating_add(other.output);
        self.cache_read = self.cache_read.saturating_add(other.cache_read);
        self.cache_creation = self.cache_creation.saturating_add(other.cache_creation);
        self.reasoning = self.reasoning.saturating_add(other.reasoning);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_conventions_count_every_token_once() {
        let openai = Usage::openai(1234, 200, 56, 10);
        assert_eq!((openai.input, openai.cache_read, openai.output, openai.reasoning), (1034, 200, 46, 10));
        assert_eq!(openai.total(), 1234 + 56);
        let gemini = Usage::gemini(1234, 200, 56, 10);
        assert_eq!(gemini.total(), 1234 + 56 + 10);
        let anthropic = Usage::anthropic(1234, 56, 200, 100);
        assert_eq!(anthropic.total(), 1590);
        let odd = Usage::inclusive(10, 300, 100, 5, 20);
        assert_eq!((odd.input, odd.output), (0, 0), "inconsistent counts saturate, never wrap");
        let mut sum = Usage::default();
        sum += openai;
        sum += gemini;
        assert_eq!(sum.total(), openai.total() + gemini.total());
    }
}
