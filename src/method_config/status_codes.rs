//! A set of gRPC status codes, as the policies keep them: one bit per code.

use tonic::Code;

/// A set of gRPC status codes (0 ..= 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct StatusCodes(u32);

impl StatusCodes {
    /// The set of `codes`.
    pub(crate) fn of(codes: impl IntoIterator<Item = Code>) -> Self {
        StatusCodes(codes.into_iter().fold(0, |bits, c| bits | 1 << c as u32))
    }

    /// Whether `code` is in the set.
    #[inline]
    pub(crate) fn contains(self, code: Code) -> bool {
        self.0 & (1 << code as u32) != 0
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The codes, in numeric order.
    pub(crate) fn to_vec(self) -> Vec<Code> {
        (0..=16)
            .filter(|i| self.0 & (1 << i) != 0)
            .map(Code::from_i32)
            .collect()
    }
}
