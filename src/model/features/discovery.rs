//! `--discovery`: where a service's instances register and where its clients find them.

use super::{Dependency, Kind, Part};
use crate::model::settings::{SectionSpec, Setting, Value};

/// `--discovery`: where instances register and where clients find them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveryKind {
    /// A list of addresses from the configuration; nothing registers.
    Static,
    /// A DNS name resolved periodically (a Kubernetes headless Service); nothing registers.
    Dns,
    /// One Redis key per instance with a TTL, refreshed by a heartbeat, and an index.
    Redis,
    /// One etcd key per instance under the service's prefix, held by a lease; clients watch.
    Etcd,
}

impl Kind for DiscoveryKind {
    const FEATURE: &'static str = "discovery";
    const KINDS: &'static [(Self, &'static str, &'static str)] = &[
        (
            Self::Static,
            "static",
            "addresses listed in the configuration (DISCOVERY_ENDPOINTS)",
        ),
        (
            Self::Dns,
            "dns",
            "a DNS name resolved periodically, such as a Kubernetes headless Service",
        ),
        (
            Self::Redis,
            "redis",
            "instances register in Redis: a key with a TTL each, refreshed by a heartbeat",
        ),
        (
            Self::Etcd,
            "etcd",
            "instances register in etcd under a lease kept alive; clients watch the prefix",
        ),
    ];
    const NONE: Option<Self> = None;

    fn part(self) -> Option<&'static Part> {
        Some(match self {
            Self::Static => &STATIC,
            Self::Dns => &DNS,
            Self::Redis => &REDIS,
            Self::Etcd => &ETCD,
        })
    }
}

const SERVICE: Setting = Setting {
    key: "service",
    env: Some("DISCOVERY_SERVICE"),
    rust_type: "String",
    default: Value::Str(""),
    doc: "Name the instances register under and the client resolves; empty: the crate's name",
};

const ADVERTISE: Setting = Setting {
    key: "advertise_address",
    env: Some("ADVERTISE_ADDRESS"),
    rust_type: "String",
    default: Value::Str(""),
    doc: "`host` or `host:port` other machines reach this instance at; empty: GRPC_HOST when it names one address, else the address of the interface the default route leaves by",
};

const BALANCER: Setting = Setting {
    key: "balancer",
    env: Some("DISCOVERY_BALANCER"),
    rust_type: "crate::discovery::Policy",
    default: Value::Variant("LeastLoaded", "least_loaded"),
    doc: "How the client spreads calls: `least_loaded` (power of two choices over latency x calls in flight) or `round_robin`",
};

const REFRESH: Setting = Setting {
    key: "refresh_ms",
    env: Some("DISCOVERY_REFRESH_MS"),
    rust_type: "u64",
    default: Value::Number("1000"),
    doc: "How often the client reads the instances again, in milliseconds (etcd's watch also tells it at once)",
};

const DRAIN_DELAY: Setting = Setting {
    key: "drain_delay_ms",
    env: Some("DISCOVERY_DRAIN_DELAY_MS"),
    rust_type: "u64",
    default: Value::Number("2000"),
    doc: "After SIGTERM, how long the server keeps serving (out of the registry, or NOT_SERVING without one) before it drains, so clients and Kubernetes endpoints drop it first",
};

const TTL: Setting = Setting {
    key: "ttl_ms",
    env: Some("DISCOVERY_TTL_MS"),
    rust_type: "u64",
    default: Value::Number("10000"),
    doc: "How long a registration outlives its last heartbeat (an instance killed with SIGKILL disappears after this), in milliseconds",
};

const HEARTBEAT: Setting = Setting {
    key: "heartbeat_ms",
    env: Some("DISCOVERY_HEARTBEAT_MS"),
    rust_type: "u64",
    default: Value::Number("0"),
    doc: "Milliseconds between heartbeats; 0: a third of the TTL",
};

/// What `static` adds to the project.
pub const STATIC: Part = Part {
    modules: &["discovery"],
    dependencies: &[],
    dev_dependencies: &[],
    cargo_features: &[],
    sections: &[SectionSpec {
        key: "discovery",
        rust_type: "microframework_runtime::discovery::DiscoveryConfig",
        doc: "Service discovery: the instances the client spreads its calls over.",
        settings: &[
            SERVICE,
            ADVERTISE,
            BALANCER,
            REFRESH,
            DRAIN_DELAY,
            Setting {
                key: "endpoints",
                env: Some("DISCOVERY_ENDPOINTS"),
                rust_type: "String",
                default: Value::Str(""),
                doc: "Comma-separated addresses of the instances (`10.0.0.5:50051,10.0.0.6:50051`); empty: 127.0.0.1 at GRPC_PORT",
            },
        ],
    }],
};

/// What `dns` adds to the project.
pub const DNS: Part = Part {
    modules: &["discovery"],
    dependencies: &[Dependency::runtime(&["dns"])],
    dev_dependencies: &[],
    cargo_features: &[],
    sections: &[SectionSpec {
        key: "discovery",
        rust_type: "microframework_runtime::discovery::DiscoveryConfig",
        doc: "Service discovery: a DNS name whose A/AAAA records are the instances.",
        settings: &[
            SERVICE,
            ADVERTISE,
            BALANCER,
            REFRESH,
            DRAIN_DELAY,
            Setting {
                key: "dns_name",
                env: Some("DISCOVERY_DNS_NAME"),
                rust_type: "String",
                default: Value::Str("localhost"),
                doc: "Name whose A/AAAA records are the instances, such as a headless Service `users.prod.svc.cluster.local`",
            },
            Setting {
                key: "dns_port",
                env: Some("DISCOVERY_DNS_PORT"),
                rust_type: "u16",
                default: Value::Number("0"),
                doc: "gRPC port of the instances; 0: GRPC_PORT",
            },
            Setting {
                key: "dns_server",
                env: Some("DISCOVERY_DNS_SERVER"),
                rust_type: "String",
                default: Value::Str(""),
                doc: "`ip:port` of the DNS server to ask; empty: the system's (/etc/resolv.conf)",
            },
        ],
    }],
};

const REGISTRY_CA: Setting = Setting {
    key: "registry_ca_file",
    env: Some("REGISTRY_CA_FILE"),
    rust_type: "String",
    default: Value::Str(""),
    doc: "Over TLS: PEM file of the CA that signed the registry's certificate",
};

const REGISTRY_CERT: Setting = Setting {
    key: "registry_cert_file",
    env: Some("REGISTRY_CERT_FILE"),
    rust_type: "String",
    default: Value::Str(""),
    doc: "Over TLS: PEM certificate this instance presents to the registry (mutual TLS)",
};

const REGISTRY_KEY: Setting = Setting {
    key: "registry_key_file",
    env: Some("REGISTRY_KEY_FILE"),
    rust_type: "String",
    default: Value::Str(""),
    doc: "Over TLS: PEM private key of `registry_cert_file`",
};

/// What `redis` adds to the project.
pub const REDIS: Part = Part {
    modules: &["discovery"],
    dependencies: &[Dependency::runtime(&["redis"])],
    dev_dependencies: &[],
    cargo_features: &[],
    sections: &[SectionSpec {
        key: "discovery",
        rust_type: "microframework_runtime::discovery::DiscoveryConfig",
        doc: "Service discovery in Redis: a key with a TTL per instance and an index of them.",
        settings: &[
            SERVICE,
            ADVERTISE,
            BALANCER,
            REFRESH,
            DRAIN_DELAY,
            TTL,
            HEARTBEAT,
            Setting {
                key: "redis_url",
                env: Some("REDIS_URL"),
                rust_type: "String",
                default: Value::Str("redis://127.0.0.1:6379"),
                doc: "The Redis server: `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS; holds a password, so set it in the environment (or `redis_url_file`)",
            },
            Setting {
                key: "redis_url_file",
                env: Some("REDIS_URL_FILE"),
                rust_type: "String",
                default: Value::Str(""),
                doc: "A file holding the URL; wins over `redis_url` (a mounted Kubernetes Secret)",
            },
            Setting {
                key: "redis_prefix",
                env: Some("DISCOVERY_REDIS_PREFIX"),
                rust_type: "String",
                default: Value::Str("services"),
                doc: "Prefix of the keys: `PREFIX:SERVICE` is the index, `PREFIX:SERVICE:ID` an instance",
            },
            Setting {
                doc: "Over TLS (`rediss://`): PEM file of the CA that signed Redis's certificate; empty: the system's roots",
                ..REGISTRY_CA
            },
            REGISTRY_CERT,
            REGISTRY_KEY,
        ],
    }],
};

/// What `etcd` adds to the project: the runtime's registry, which compiles the subset of
/// etcd's protos it uses with protox, so no protoc is needed.
pub const ETCD: Part = Part {
    modules: &["discovery"],
    dependencies: &[Dependency::runtime(&["etcd"])],
    dev_dependencies: &[],
    cargo_features: &[],
    sections: &[SectionSpec {
        key: "discovery",
        rust_type: "microframework_runtime::discovery::DiscoveryConfig",
        doc: "Service discovery in etcd: a key per instance held by a lease, watched by clients.",
        settings: &[
            SERVICE,
            ADVERTISE,
            BALANCER,
            REFRESH,
            DRAIN_DELAY,
            TTL,
            HEARTBEAT,
            Setting {
                key: "etcd_endpoints",
                env: Some("ETCD_ENDPOINTS"),
                rust_type: "String",
                default: Value::Str("http://127.0.0.1:2379"),
                doc: "Comma-separated etcd client URLs, all `http://` or all `https://` (TLS)",
            },
            Setting {
                key: "etcd_prefix",
                env: Some("DISCOVERY_ETCD_PREFIX"),
                rust_type: "String",
                default: Value::Str("/services"),
                doc: "Prefix of the keys: `PREFIX/SERVICE/ID` holds an instance's address",
            },
            Setting {
                key: "etcd_username",
                env: Some("ETCD_USERNAME"),
                rust_type: "String",
                default: Value::Str(""),
                doc: "The etcd user to authenticate as (etcd's auth); empty: none",
            },
            Setting {
                key: "etcd_password",
                env: Some("ETCD_PASSWORD"),
                rust_type: "String",
                default: Value::Str(""),
                doc: "The user's password; a secret, so set it in the environment (or `etcd_password_file`)",
            },
            Setting {
                key: "etcd_password_file",
                env: Some("ETCD_PASSWORD_FILE"),
                rust_type: "String",
                default: Value::Str(""),
                doc: "A file holding the password; wins over `etcd_password`",
            },
            Setting {
                doc: "Over TLS (`https://`): PEM file of the CA that signed etcd's certificate; required then",
                ..REGISTRY_CA
            },
            REGISTRY_CERT,
            REGISTRY_KEY,
        ],
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::settings::declared;
    use microframework_runtime::discovery::DiscoveryConfig;

    #[test]
    fn each_kind_declares_the_runtime_defaults_of_its_keys() {
        for part in [&STATIC, &DNS, &REDIS, &ETCD] {
            let config = declared::<DiscoveryConfig>(part.sections, "discovery");
            assert_eq!(config, DiscoveryConfig::default(), "{:?}", part.modules);
        }
    }
}
