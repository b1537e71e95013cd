//! One byte of state per event, in fixed-size chunks; a chunk whose every
//! event has settled into the same state keeps that state once instead.
//!
//! A growing `Vec` doubles and copies, and the buffers it leaves behind
//! stay as holes in the heap: at 10 M events that cost about as much
//! again as the states themselves. Chunks never move. And in a healthy run
//! almost every event ends published, delivered and processed: once all
//! 65,536 events of a chunk have, the chunk's bytes are freed and it keeps
//! that one byte. Memory then grows with the events still open or that
//! ended otherwise (failed, dead-lettered, lost), not with the length of
//! the run. A later change to an event of such a chunk (none is expected:
//! a settled event stays settled) brings its bytes back.

/// Events per chunk: 64 KiB each.
const CHUNK: usize = 1 << 16;

#[derive(Debug)]
enum Chunk {
    /// Each event's byte, and how many of them are the settled state.
    Bytes { bytes: Box<[u8]>, settled: usize },
    /// Every event of the chunk holds this byte.
    Uniform(u8),
}

#[derive(Debug)]
pub(super) struct States {
    chunks: Vec<Chunk>,
    len: usize,
    /// The state most events end in; a full chunk of it is kept as one byte.
    settled: u8,
}

impl States {
    /// States where a full chunk of `settled` takes one byte.
    pub fn new(settled: u8) -> States {
        States {
            chunks: Vec::new(),
            len: 0,
            settled,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn push(&mut self, state: u8) {
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(Chunk::Bytes {
                bytes: vec![0; CHUNK].into_boxed_slice(),
                settled: 0,
            });
        }
        let index = self.len;
        self.len += 1;
        // The new byte was 0 (never the settled state), so this counts it.
        self.update(index, |_| state);
    }

    pub fn get(&self, index: usize) -> Option<u8> {
        if index >= self.len {
            return None;
        }
        Some(match &self.chunks[index / CHUNK] {
            Chunk::Bytes { bytes, .. } => bytes[index % CHUNK],
            Chunk::Uniform(state) => *state,
        })
    }

    /// Sets event `index`'s byte to `change` of it, and returns the byte
    /// as it was; None past the end.
    pub fn update(&mut self, index: usize, change: impl FnOnce(u8) -> u8) -> Option<u8> {
        if index >= self.len {
            return None;
        }
        let target = self.settled;
        let chunk = &mut self.chunks[index / CHUNK];
        if let Chunk::Uniform(state) = *chunk {
            let new = change(state);
            if new == state {
                return Some(state);
            }
            let count = if state == target { CHUNK } else { 0 };
            *chunk = Chunk::Bytes {
                bytes: vec![state; CHUNK].into_boxed_slice(),
                settled: count,
            };
            return Self::write(chunk, index % CHUNK, |_| new, target);
        }
        Self::write(chunk, index % CHUNK, change, target)
    }

    fn write(
        chunk: &mut Chunk,
        at: usize,
        change: impl FnOnce(u8) -> u8,
        target: u8,
    ) -> Option<u8> {
        let Chunk::Bytes { bytes, settled } = chunk else {
            return None;
        };
        let old = bytes[at];
        let new = change(old);
        bytes[at] = new;
        match (old == target, new == target) {
            (false, true) => *settled += 1,
            (true, false) => *settled -= 1,
            _ => {}
        }
        if *settled == CHUNK {
            *chunk = Chunk::Uniform(target);
        }
        Some(old)
    }

    /// Every event's state, in order.
    pub fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        self.chunks
            .iter()
            .flat_map(|c| {
                let (bytes, uniform): (&[u8], Option<u8>) = match c {
                    Chunk::Bytes { bytes, .. } => (bytes, None),
                    Chunk::Uniform(state) => (&[], Some(*state)),
                };
                bytes.iter().copied().chain(
                    uniform
                        .into_iter()
                        .flat_map(|s| std::iter::repeat_n(s, CHUNK)),
                )
            })
            .take(self.len)
    }

    /// Bytes held for the states (not counting the chunk list itself).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.chunks
            .iter()
            .map(|c| match c {
                Chunk::Bytes { bytes, .. } => bytes.len(),
                Chunk::Uniform(_) => 0,
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTLED: u8 = 43;

    #[test]
    fn states_read_back_across_chunk_edges() {
        let mut states = States::new(SETTLED);
        let n = CHUNK * 2 + 3;
        for i in 0..n {
            states.push((i % 251) as u8);
        }
        assert_eq!(states.len(), n);
        assert_eq!(states.chunks.len(), 3);
        for i in [0, CHUNK - 1, CHUNK, 2 * CHUNK + 2] {
            assert_eq!(states.get(i), Some((i % 251) as u8));
        }
        assert_eq!(states.get(n), None);
        assert_eq!(states.update(CHUNK, |_| 7), Some((CHUNK % 251) as u8));
        assert_eq!(states.get(CHUNK), Some(7));
        assert_eq!(states.update(n, |_| 7), None);
        let all: Vec<u8> = states.iter().collect();
        assert_eq!(all.len(), n);
        assert_eq!(all[CHUNK], 7);
        assert_eq!(all[n - 1], ((n - 1) % 251) as u8);
    }

    #[test]
    fn a_chunk_whose_events_all_settled_keeps_one_byte_until_one_changes() {
        let mut states = States::new(SETTLED);
        let n = CHUNK * 2 + 10;
        for _ in 0..n {
            states.push(1);
        }
        assert_eq!(states.held(), 3 * CHUNK);
        // The first chunk settles; the second all but one event.
        for i in 0..2 * CHUNK - 1 {
            states.update(i, |_| SETTLED);
        }
        assert_eq!(states.held(), 2 * CHUNK, "the first chunk is freed");
        assert_eq!(states.get(5), Some(SETTLED));
        states.update(2 * CHUNK - 1, |_| SETTLED);
        assert_eq!(states.held(), CHUNK, "and the second");
        // Writing what is already there changes nothing.
        assert_eq!(states.update(7, |b| b | 32), Some(SETTLED));
        assert_eq!(states.held(), CHUNK);
        // A real change brings the chunk's bytes back, the others intact.
        assert_eq!(states.update(7, |_| 2), Some(SETTLED));
        assert_eq!(states.held(), 2 * CHUNK);
        assert_eq!((states.get(6), states.get(7)), (Some(SETTLED), Some(2)));
        let all: Vec<u8> = states.iter().collect();
        assert_eq!(all.len(), n);
        assert_eq!(all.iter().filter(|&&b| b == SETTLED).count(), 2 * CHUNK - 1);
        // Settling it again frees it again.
        states.update(7, |_| SETTLED);
        assert_eq!(states.held(), CHUNK);
        // The last, partial chunk never is: it is not full.
        for i in 2 * CHUNK..n {
            states.update(i, |_| SETTLED);
        }
        assert_eq!(states.held(), CHUNK);
    }
}
