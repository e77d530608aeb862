//! How a client chooses its subset: [`Subsetting`].

use crate::error::Error;

/// How a client chooses its subset of a fleet; see the [module docs](super).
///
/// ```
/// use tower_lb::discover::subset::Subsetting;
/// // No coordination between clients: a random seed per client.
/// let random = Subsetting::rendezvous(50);
/// // Client 3 of 20, each connecting to 50 servers.
/// let tiled = Subsetting::aperture(50, 3, 20)?;
/// # Ok::<(), tower_lb::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subsetting {
    pub(super) size: usize,
    pub(super) rule: Rule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rule {
    /// The endpoints with the best scores for this seed.
    Rendezvous { seed: u64 },
    /// The endpoints after position `client / clients` of the ring in key order.
    Aperture { client: u64, clients: u64 },
}

impl Subsetting {
    /// Rendezvous subsetting with a random seed for this client (gRPC A68): `size` endpoints,
    /// no coordination. A `size` of 0 is taken as 1.
    pub fn rendezvous(size: usize) -> Self {
        // The standard library's per-process random hash keys, drawn from the OS.
        let seed =
            std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 0u64);
        Self::rendezvous_with_seed(size, seed)
    }

    /// Rendezvous subsetting with a given seed: clients with the same seed choose the same
    /// subset (say, the replicas of one shard, or a client across restarts).
    pub fn rendezvous_with_seed(size: usize, seed: u64) -> Self {
        Subsetting {
            size: size.max(1),
            rule: Rule::Rendezvous { seed },
        }
    }

    /// Deterministic aperture: this is client `client` of `clients` (`0 ≤ client < clients`),
    /// taking `size` endpoints (0 is taken as 1). An error if `client` is not below `clients`.
    pub fn aperture(size: usize, client: u64, clients: u64) -> Result<Self, Error> {
        if client >= clients {
            return Err(Error::InvalidConfig(format!(
                "subsetting: client index {client} is not below the number of clients {clients}"
            )));
        }
        Ok(Subsetting {
            size: size.max(1),
            rule: Rule::Aperture { client, clients },
        })
    }

    /// How many endpoints a subset holds (fewer when discovery lists fewer).
    pub fn size(&self) -> usize {
        self.size
    }
}
