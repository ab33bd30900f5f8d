//! Static discovery: a fixed list of addresses, for a known set of machines or a platform
//! that balances behind one name.

use std::{future::Future, time::Duration};

use anyhow::Context;

use super::{Registry, Resolved};

/// A registry that lists a fixed set of addresses; nothing registers with it. Instances the
/// client cannot reach are ejected by the [`super::Balancer`] until they answer again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticList {
    addresses: Vec<String>,
}

impl StaticList {
    /// The comma-separated addresses of `listed` (`discovery.endpoints`), each made a URI by
    /// `uri` (which adds the scheme), sorted and without duplicates; `fallback` when the list
    /// is empty. An entry that is not an address is refused, naming it.
    ///
    /// ```
    /// use microframework_runtime::discovery::StaticList;
    ///
    /// let uri = |address: &str| format!("http://{address}");
    /// let list = StaticList::parse("10.0.0.6:50051, 10.0.0.5:50051", uri, "127.0.0.1:50051").unwrap();
    /// assert_eq!(list.addresses(), ["http://10.0.0.5:50051", "http://10.0.0.6:50051"]);
    /// ```
    pub fn parse(
        listed: &str,
        uri: impl Fn(&str) -> String,
        fallback: &str,
    ) -> anyhow::Result<Self> {
        let mut addresses = listed
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                let address = uri(entry);
                address
                    .parse::<http::Uri>()
                    .with_context(|| format!("discovery.endpoints: `{entry}` is not an address"))?;
                Ok(address)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        if addresses.is_empty() {
            addresses.push(uri(fallback));
        }
        addresses.sort();
        addresses.dedup();
        Ok(Self { addresses })
    }

    /// The addresses, sorted.
    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }
}

impl Registry for StaticList {
    const REGISTERS: bool = false;

    async fn resolve(&self, _service: &str) -> anyhow::Result<Resolved> {
        Ok(Resolved {
            addresses: self.addresses.clone(),
            revision: 0,
        })
    }

    fn changed(
        &self,
        _service: &str,
        _since: &Resolved,
        _refresh: Duration,
    ) -> impl Future<Output = ()> + Send {
        // The list is fixed for the life of the process.
        std::future::pending()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(address: &str) -> String {
        format!("https://{address}")
    }

    #[tokio::test]
    async fn the_listed_addresses_are_the_instances() {
        let listed = " 10.0.0.6:50051, 10.0.0.5:50051,,10.0.0.5:50051";
        let list = StaticList::parse(listed, uri, "unused").unwrap();
        let resolved = list.resolve("any").await.unwrap();
        assert_eq!(
            resolved.addresses,
            ["https://10.0.0.5:50051", "https://10.0.0.6:50051"]
        );
        let err = StaticList::parse("not an address", uri, "unused").unwrap_err();
        assert!(err.to_string().contains("`not an address`"), "{err}");
    }

    #[tokio::test]
    async fn with_no_list_the_fallback_is_the_instance() {
        let list = StaticList::parse(" , ", uri, "127.0.0.1:50051").unwrap();
        let resolved = list.resolve("any").await.unwrap();
        assert_eq!(resolved.addresses, ["https://127.0.0.1:50051"]);
    }

    #[tokio::test]
    async fn the_list_never_changes() {
        let list = StaticList::parse("", uri, "127.0.0.1:1").unwrap();
        let since = Resolved::default();
        let changed = list.changed("any", &since, Duration::ZERO);
        let waited = tokio::time::timeout(Duration::from_millis(20), changed).await;
        assert!(waited.is_err(), "a static list does not change");
    }
}
