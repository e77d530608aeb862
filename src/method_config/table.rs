//! The method configs of one balancer, found by a request's path.

use std::collections::HashMap;
use std::sync::Arc;

use super::method::MethodConfig;
use crate::error::Error;

/// Every method config of a balancer, by name: `/service/method`, then `service`, then the
/// default. Empty (and never looked into) when no method config is set.
#[derive(Debug, Clone, Default)]
pub(crate) struct MethodTable {
    /// Keyed by `service/method`.
    methods: HashMap<Box<str>, Arc<MethodConfig>>,
    services: HashMap<Box<str>, Arc<MethodConfig>>,
    default: Option<Arc<MethodConfig>>,
}

impl MethodTable {
    /// The table of `configs`; a name given twice is an error, as in gRPC.
    pub(crate) fn new(configs: &[MethodConfig]) -> Result<Self, Error> {
        let mut table = MethodTable::default();
        for (i, config) in configs.iter().enumerate() {
            let at = format!("methodConfig[{i}]");
            config.validate(&at)?;
            let shared = Arc::new(config.clone());
            for name in &config.names {
                let slot = match (name.service.as_str(), name.method.as_str()) {
                    ("", _) => table.default.replace(shared.clone()).is_some(),
                    (service, "") => table
                        .services
                        .insert(service.into(), shared.clone())
                        .is_some(),
                    (service, method) => table
                        .methods
                        .insert(format!("{service}/{method}").into(), shared.clone())
                        .is_some(),
                };
                if slot {
                    return Err(Error::InvalidConfig(format!(
                        "{at}.name: {name:?} is named by an earlier methodConfig entry too"
                    )));
                }
            }
        }
        Ok(table)
    }

    /// Whether no method config is set.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.default.is_none() && self.services.is_empty() && self.methods.is_empty()
    }

    /// The config for a request to `path` (`/service/method`), if any.
    pub(crate) fn find(&self, path: &str) -> Option<&Arc<MethodConfig>> {
        let full = path.strip_prefix('/').unwrap_or(path);
        self.methods
            .get(full)
            .or_else(|| {
                let service = full.split_once('/').map_or(full, |(s, _)| s);
                self.services.get(service)
            })
            .or(self.default.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method_config::MethodName;
    use std::time::Duration;

    #[test]
    fn most_specific_name_wins() {
        let config = |ms: u64, name: MethodName| {
            MethodConfig::new([name]).timeout(Duration::from_millis(ms))
        };
        let table = MethodTable::new(&[
            config(1, MethodName::method("a.S", "M")),
            config(2, MethodName::service("a.S")),
            config(3, MethodName::any()),
        ])
        .unwrap();
        let timeout = |path| table.find(path).and_then(|c| c.get_timeout());
        assert_eq!(timeout("/a.S/M"), Some(Duration::from_millis(1)));
        assert_eq!(timeout("/a.S/Other"), Some(Duration::from_millis(2)));
        assert_eq!(timeout("/b.T/M"), Some(Duration::from_millis(3)));
        let twice = MethodTable::new(&[
            config(1, MethodName::service("a.S")),
            config(2, MethodName::service("a.S")),
        ]);
        assert!(
            twice
                .unwrap_err()
                .to_string()
                .contains("methodConfig[1].name")
        );
    }
}
