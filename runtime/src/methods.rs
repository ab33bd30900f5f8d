//! The table of a service's methods, which the generated code hands to the layers that need
//! to know a call's kind (metrics, the call guard, retries) in place of code generated per
//! project.

/// How a method streams, named as go-grpc-prometheus names it in `grpc_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MethodKind {
    /// One request, one response.
    Unary,
    /// A stream of requests, one response.
    ClientStream,
    /// One request, a stream of responses.
    ServerStream,
    /// Streams both ways.
    BidiStream,
}

impl MethodKind {
    /// The label value: `unary`, `client_stream`, `server_stream` or `bidi_stream`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unary => "unary",
            Self::ClientStream => "client_stream",
            Self::ServerStream => "server_stream",
            Self::BidiStream => "bidi_stream",
        }
    }

    /// Whether the request is a single message, so a call can be sent again as it was.
    pub const fn has_one_request(self) -> bool {
        matches!(self, Self::Unary | Self::ServerStream)
    }
}

/// One route a server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Method {
    /// `/package.Service/Method`.
    pub path: &'static str,
    /// How it streams.
    pub kind: MethodKind,
    /// Whether repeating it is safe (it only reads): the client retries it on UNAVAILABLE
    /// and DEADLINE_EXCEEDED unless its configuration lists the idempotent methods itself.
    pub idempotent: bool,
}

impl Method {
    /// A unary method.
    pub const fn unary(path: &'static str) -> Self {
        Self::new(path, MethodKind::Unary)
    }

    /// A client-streaming method.
    pub const fn client_stream(path: &'static str) -> Self {
        Self::new(path, MethodKind::ClientStream)
    }

    /// A server-streaming method.
    pub const fn server_stream(path: &'static str) -> Self {
        Self::new(path, MethodKind::ServerStream)
    }

    /// A bidirectional-streaming method.
    pub const fn bidi_stream(path: &'static str) -> Self {
        Self::new(path, MethodKind::BidiStream)
    }

    /// The same method, marked safe to repeat.
    pub const fn idempotent(self) -> Self {
        Self {
            idempotent: true,
            ..self
        }
    }

    const fn new(path: &'static str, kind: MethodKind) -> Self {
        Self {
            path,
            kind,
            idempotent: false,
        }
    }
}

/// Every route a server answers, sorted by path: a lookup by binary search, and a stable
/// index per route (metrics keep one series per index).
///
/// ```
/// use microframework_runtime::methods::{Method, MethodKind, Methods};
///
/// const METHODS: Methods = Methods::new(&[
///     Method::unary("/greet.v1.Greeter/Hello").idempotent(),
///     Method::server_stream("/greet.v1.Greeter/Stream"),
/// ]);
/// assert_eq!(METHODS.kind("/greet.v1.Greeter/Stream"), Some(MethodKind::ServerStream));
/// assert_eq!(METHODS.index("/greet.v1.Greeter/Nope"), None);
/// assert!(METHODS.get("/greet.v1.Greeter/Hello").is_some_and(|m| m.idempotent));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Methods(&'static [Method]);

impl Methods {
    /// The table of `sorted` (by path; a table out of order is refused when built in a
    /// constant, and by a panic otherwise).
    pub const fn new(sorted: &'static [Method]) -> Self {
        let mut index = 1;
        while index < sorted.len() {
            assert!(
                str_less(sorted[index - 1].path, sorted[index].path),
                "methods must be sorted by path, each once"
            );
            index += 1;
        }
        Self(sorted)
    }

    /// A table with no routes.
    pub const fn empty() -> Self {
        Self(&[])
    }

    /// The index of `path` in the table.
    pub fn index(&self, path: &str) -> Option<usize> {
        self.0.binary_search_by(|method| method.path.cmp(path)).ok()
    }

    /// The method at `path`.
    pub fn get(&self, path: &str) -> Option<&'static Method> {
        let table: &'static [Method] = self.0;
        self.index(path).map(|index| &table[index])
    }

    /// The method at `index` (as [`Methods::index`] gives it).
    pub fn at(&self, index: usize) -> Option<&'static Method> {
        let table: &'static [Method] = self.0;
        table.get(index)
    }

    /// The kind of the method at `path`.
    pub fn kind(&self, path: &str) -> Option<MethodKind> {
        self.get(path).map(|method| method.kind)
    }

    /// How many routes the table holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the table holds no routes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The routes, in order.
    pub fn iter(&self) -> std::slice::Iter<'static, Method> {
        self.0.iter()
    }
}

/// `a < b` by bytes, usable in a constant.
const fn str_less(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut index = 0;
    while index < a.len() && index < b.len() {
        if a[index] != b[index] {
            return a[index] < b[index];
        }
        index += 1;
    }
    a.len() < b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: Methods = Methods::new(&[
        Method::unary("/a.S/Get").idempotent(),
        Method::client_stream("/a.S/Put"),
        Method::bidi_stream("/b.T/Chat"),
    ]);

    #[test]
    fn lookups_find_each_route_and_only_those() {
        assert_eq!(TABLE.len(), 3);
        assert_eq!(TABLE.index("/a.S/Put"), Some(1));
        assert_eq!(TABLE.at(1).map(|m| m.path), Some("/a.S/Put"));
        assert_eq!(TABLE.at(3), None);
        assert_eq!(TABLE.kind("/b.T/Chat"), Some(MethodKind::BidiStream));
        assert_eq!(TABLE.get("/a.S/Get").map(|m| m.idempotent), Some(true));
        assert_eq!(TABLE.get("/a.S/Put").map(|m| m.idempotent), Some(false));
        assert_eq!(TABLE.index("/a.S/Gets"), None);
        assert_eq!(TABLE.index(""), None);
        assert!(Methods::empty().is_empty());
    }

    #[test]
    #[should_panic(expected = "sorted")]
    fn an_unsorted_table_is_refused() {
        let unsorted = [Method::unary("/b.S/X"), Method::unary("/a.S/X")];
        let leaked: &'static [Method] = Box::leak(Box::new(unsorted));
        Methods::new(leaked);
    }

    #[test]
    fn kinds_are_named_as_go_grpc_prometheus_names_them() {
        let names: Vec<&str> = [
            MethodKind::Unary,
            MethodKind::ClientStream,
            MethodKind::ServerStream,
            MethodKind::BidiStream,
        ]
        .iter()
        .map(|kind| kind.as_str())
        .collect();
        assert_eq!(
            names,
            ["unary", "client_stream", "server_stream", "bidi_stream"]
        );
        assert!(MethodKind::ServerStream.has_one_request());
        assert!(!MethodKind::ClientStream.has_one_request());
    }
}
