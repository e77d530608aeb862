//! Where HTTP/2 frames begin and end in a byte stream, for a PING of our own on hyper's
//! connection (`ping.rs`): one may be written only between two of hyper's frames, and its
//! answer must be taken out before hyper reads it.
//!
//! Both directions are plain frame streams (RFC 9113 §4.1: a 9-byte header whose first three
//! bytes are the payload length, then the payload), the client's after its 24-byte preface.
//! The trackers skip payloads whole, so the cost is per frame, not per byte.

/// The client connection preface, which precedes the client's first frame (RFC 9113 §3.4).
const PREFACE_LEN: usize = 24;
const HEADER_LEN: usize = 9;
/// A PING frame: 8 bytes of payload, type 6, on stream 0 (RFC 9113 §6.7).
pub(crate) const PING_LEN: usize = HEADER_LEN + 8;
const PING_TYPE: u8 = 0x6;
const ACK: u8 = 0x1;

/// Our PING's opaque data. hyper's own pings (keep-alive, window probing) carry other data,
/// and the server echoes it in its answer, so answers to ours are told apart by it.
const OPAQUE: [u8; 8] = *b"towerlb\x01";

/// The PING frame we send.
pub(crate) const PING: [u8; PING_LEN] = frame(0);

/// The server's answer to it.
const PING_ACK: [u8; PING_LEN] = frame(ACK);

const fn frame(flags: u8) -> [u8; PING_LEN] {
    let mut f = [0u8; PING_LEN];
    f[2] = 8;
    f[3] = PING_TYPE;
    f[4] = flags;
    let mut i = 0;
    while i < 8 {
        f[HEADER_LEN + i] = OPAQUE[i];
        i += 1;
    }
    f
}

/// Follows frame boundaries through a stream read or written in arbitrary pieces.
#[derive(Debug, Clone)]
struct Boundaries {
    /// Bytes still to skip before the first frame (the client's preface).
    preface: usize,
    /// The header of the frame being read, and how much of it has been seen.
    header: [u8; HEADER_LEN],
    header_seen: usize,
    /// Payload bytes of the current frame still to come.
    payload: usize,
}

impl Boundaries {
    fn new(preface: usize) -> Self {
        Boundaries {
            preface,
            header: [0; HEADER_LEN],
            header_seen: 0,
            payload: 0,
        }
    }

    fn at_boundary(&self) -> bool {
        self.preface == 0 && self.header_seen == 0 && self.payload == 0
    }

    /// Moves past `bytes`; returns how many it consumed: all of them, or with
    /// `stop_at_boundary` up to the first boundary after at least one byte.
    fn advance(&mut self, bytes: &[u8], stop_at_boundary: bool) -> usize {
        let mut at = 0;
        while at < bytes.len() {
            if stop_at_boundary && at > 0 && self.at_boundary() {
                break;
            }
            let rest = bytes.len() - at;
            if self.preface > 0 {
                let n = self.preface.min(rest);
                self.preface -= n;
                at += n;
            } else if self.payload > 0 {
                let n = self.payload.min(rest);
                self.payload -= n;
                at += n;
            } else {
                let n = (HEADER_LEN - self.header_seen).min(rest);
                self.header[self.header_seen..self.header_seen + n]
                    .copy_from_slice(&bytes[at..at + n]);
                self.header_seen += n;
                at += n;
                if self.header_seen == HEADER_LEN {
                    self.header_seen = 0;
                    self.payload = usize::from(self.header[0]) << 16
                        | usize::from(self.header[1]) << 8
                        | usize::from(self.header[2]);
                }
            }
        }
        at
    }
}

/// The client's outgoing stream: whether a frame of ours may go in now.
#[derive(Debug, Clone)]
pub(crate) struct Outbound(Boundaries);

impl Outbound {
    pub(crate) fn new() -> Self {
        Outbound(Boundaries::new(PREFACE_LEN))
    }

    /// Whether everything written so far ends on a frame boundary.
    pub(crate) fn at_boundary(&self) -> bool {
        self.0.at_boundary()
    }

    /// Moves past bytes the connection wrote.
    pub(crate) fn wrote(&mut self, bytes: &[u8]) {
        self.0.advance(bytes, false);
    }
}

/// The server's incoming stream: finds and removes the answers to our PINGs.
#[derive(Debug, Clone)]
pub(crate) struct Inbound {
    frames: Boundaries,
    /// The start of what may be an answer to our PING, cut short by the end of a read; it goes
    /// back in front of the next read.
    held: [u8; PING_LEN],
    held_len: usize,
}

impl Inbound {
    pub(crate) fn new() -> Self {
        Inbound {
            frames: Boundaries::new(0),
            held: [0; PING_LEN],
            held_len: 0,
        }
    }

    /// Takes back the bytes held from the last read, to go in front of the next one.
    pub(crate) fn take_held(&mut self) -> ([u8; PING_LEN], usize) {
        let held = (self.held, self.held_len);
        self.held_len = 0;
        held
    }

    /// Holds `bytes` back again (a read that took them back found nothing after them).
    pub(crate) fn hold(&mut self, bytes: &[u8]) {
        self.held[..bytes.len()].copy_from_slice(bytes);
        self.held_len = bytes.len();
    }

    /// Filters bytes just read, in place: answers to our PING are removed (when `expecting`
    /// one) and the start of a possible answer at the end is held back. Returns how many bytes
    /// remain at the front of `bytes`, and how many answers were removed.
    pub(crate) fn filter(&mut self, bytes: &mut [u8], expecting: bool) -> (usize, usize) {
        if !expecting {
            self.frames.advance(bytes, false);
            return (bytes.len(), 0);
        }
        let (mut read, mut kept, mut answers) = (0, 0, 0);
        while read < bytes.len() {
            if self.frames.at_boundary() {
                let rest = &bytes[read..];
                let n = rest.len().min(PING_LEN);
                if rest[..n] == PING_ACK[..n] {
                    if n == PING_LEN {
                        answers += 1;
                        read += PING_LEN;
                    } else {
                        // Maybe an answer: decide when the rest of it arrives.
                        self.held[..n].copy_from_slice(rest);
                        self.held_len = n;
                        read += n;
                    }
                    continue;
                }
            }
            // Up to the end of this frame (or of the bytes read).
            let n = self.frames.advance(&bytes[read..], true);
            bytes.copy_within(read..read + n, kept);
            read += n;
            kept += n;
        }
        (kept, answers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame_of(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut f = vec![
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
            kind,
            flags,
            0,
            0,
            0,
            1,
        ];
        f.extend_from_slice(payload);
        f
    }

    /// Feeds `stream` to `inbound` in pieces cut at `cuts`, as reads would, and returns what a
    /// reader behind it sees and the answers removed.
    fn read_in_pieces(stream: &[u8], cuts: &[usize], expecting: bool) -> (Vec<u8>, usize) {
        let mut inbound = Inbound::new();
        let (mut seen, mut answers, mut at) = (Vec::new(), 0, 0);
        let mut ends: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        ends.push(stream.len());
        ends.sort_unstable();
        for end in ends {
            if end < at {
                continue;
            }
            let (held, held_len) = inbound.take_held();
            let mut buf = held[..held_len].to_vec();
            buf.extend_from_slice(&stream[at..end]);
            at = end;
            let (kept, n) = inbound.filter(&mut buf, expecting);
            seen.extend_from_slice(&buf[..kept]);
            answers += n;
        }
        let (held, held_len) = inbound.take_held();
        seen.extend_from_slice(&held[..held_len]);
        (seen, answers)
    }

    #[test]
    fn an_answer_is_removed_and_everything_else_kept() {
        let data = frame_of(0, 0, b"hello");
        let their_ping = frame_of(PING_TYPE, ACK, b"hyper-ka");
        let mut stream = data.clone();
        stream.extend_from_slice(&PING_ACK);
        stream.extend_from_slice(&their_ping);
        let (seen, answers) = read_in_pieces(&stream, &[], true);
        assert_eq!(answers, 1);
        assert_eq!(seen, [data, their_ping].concat());
        // Not expecting one: nothing is touched.
        let (seen, answers) = read_in_pieces(&stream, &[], false);
        assert_eq!((seen, answers), (stream, 0));
    }

    #[test]
    fn a_payload_that_looks_like_an_answer_is_not_one() {
        let data = frame_of(0, 0, &PING_ACK);
        let (seen, answers) = read_in_pieces(&data, &[3, 9, 12], true);
        assert_eq!((seen, answers), (data, 0));
    }

    #[test]
    fn the_outbound_side_knows_its_boundaries() {
        let mut out = Outbound::new();
        assert!(!out.at_boundary());
        out.wrote(&[0; PREFACE_LEN]);
        assert!(out.at_boundary());
        let data = frame_of(0, 0, b"abc");
        out.wrote(&data[..5]);
        assert!(!out.at_boundary());
        out.wrote(&data[5..10]);
        assert!(!out.at_boundary());
        out.wrote(&data[10..]);
        assert!(out.at_boundary());
        out.wrote(&frame_of(0x4, 1, &[]));
        assert!(out.at_boundary());
    }

    proptest! {
        #[test]
        fn any_cut_of_any_frames_reads_the_same(
            frames in prop::collection::vec((0u8..10, any::<u8>(), prop::collection::vec(any::<u8>(), 0..40), any::<bool>()), 0..12),
            cuts in prop::collection::vec(any::<usize>(), 0..20),
        ) {
            let (mut stream, mut expected, mut ours) = (Vec::new(), Vec::new(), 0);
            for (kind, flags, payload, answer_after) in &frames {
                let f = frame_of(*kind, *flags, payload);
                stream.extend_from_slice(&f);
                expected.extend_from_slice(&f);
                if *answer_after {
                    stream.extend_from_slice(&PING_ACK);
                    ours += 1;
                }
            }
            let (seen, answers) = read_in_pieces(&stream, &cuts, true);
            prop_assert_eq!(answers, ours);
            prop_assert_eq!(seen, expected);
        }

        #[test]
        fn outbound_boundaries_match_frame_ends(
            sizes in prop::collection::vec(0usize..50, 1..10),
            cuts in prop::collection::vec(any::<usize>(), 0..20),
        ) {
            let mut stream = vec![0u8; PREFACE_LEN];
            let mut ends = vec![PREFACE_LEN];
            for size in &sizes {
                stream.extend_from_slice(&frame_of(0, 0, &vec![7; *size]));
                ends.push(stream.len());
            }
            let mut pieces: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
            pieces.push(stream.len());
            pieces.sort_unstable();
            let (mut out, mut at) = (Outbound::new(), 0);
            for end in pieces {
                if end < at { continue; }
                out.wrote(&stream[at..end]);
                at = end;
                prop_assert_eq!(out.at_boundary(), ends.contains(&end));
            }
        }
    }
}
