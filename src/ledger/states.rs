//! One byte of state per event, for the whole run, in fixed-size chunks.
//!
//! A growing `Vec` doubles and copies, and the buffers it leaves behind
//! stay as holes in the heap: at 10 M events that cost about as much
//! again as the states themselves. Chunks never move, so memory grows by
//! one byte per event and nothing else.

/// Events per chunk: 64 KiB each.
const CHUNK: usize = 1 << 16;

#[derive(Debug, Default)]
pub(super) struct States {
    chunks: Vec<Box<[u8]>>,
    len: usize,
}

impl States {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn push(&mut self, state: u8) {
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(vec![0; CHUNK].into_boxed_slice());
        }
        let (chunk, at) = (self.len / CHUNK, self.len % CHUNK);
        self.chunks[chunk][at] = state;
        self.len += 1;
    }

    pub fn get(&self, index: usize) -> Option<u8> {
        (index < self.len).then(|| self.chunks[index / CHUNK][index % CHUNK])
    }

    pub fn get_mut(&mut self, index: usize) -> Option<&mut u8> {
        if index < self.len {
            Some(&mut self.chunks[index / CHUNK][index % CHUNK])
        } else {
            None
        }
    }

    /// Every event's state, in order.
    pub fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        self.chunks
            .iter()
            .flat_map(|c| c.iter().copied())
            .take(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_back_across_chunk_edges() {
        let mut states = States::default();
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
        *states.get_mut(CHUNK).unwrap() = 7;
        assert_eq!(states.get(CHUNK), Some(7));
        assert!(states.get_mut(n).is_none());
        let all: Vec<u8> = states.iter().collect();
        assert_eq!(all.len(), n);
        assert_eq!(all[CHUNK], 7);
        assert_eq!(all[n - 1], ((n - 1) % 251) as u8);
    }
}
