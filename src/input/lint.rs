//! Proto style checks run by `microframework check`, after buf's STANDARD rules: versioned
//! packages, PascalCase services, messages and enums, lower_snake_case fields, and enums whose
//! zero value ends in `_UNSPECIFIED`.

use heck::{ToSnakeCase, ToUpperCamelCase};
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorProto};

/// One style problem, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The file's import path.
    pub file: String,
    /// 1-based line, where the parser recorded one.
    pub line: Option<i32>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

struct Linter<'a> {
    file: &'a FileDescriptorProto,
    findings: Vec<Finding>,
}

impl Linter<'_> {
    fn report(&mut self, path: &[i32], message: String) {
        let line = self.file.source_code_info.as_ref().and_then(|info| {
            info.location
                .iter()
                .find(|location| location.path == path)
                .and_then(|location| location.span.first().map(|l| l + 1))
        });
        self.findings.push(Finding {
            file: self.file.name().to_owned(),
            line,
            message,
        });
    }

    fn message(&mut self, message: &DescriptorProto, path: Vec<i32>) {
        let name = message.name();
        if name.to_upper_camel_case() != name {
            self.report(&path, format!("message `{name}` should be PascalCase"));
        }
        for (index, field) in message.field.iter().enumerate() {
            let field_name = field.name();
            if field_name.to_snake_case() != field_name {
                let mut field_path = path.clone();
                field_path.extend([2, index as i32]);
                self.report(
                    &field_path,
                    format!("field `{name}.{field_name}` should be lower_snake_case"),
                );
            }
        }
        for (index, nested) in message.nested_type.iter().enumerate() {
            if nested.options.as_ref().is_some_and(|o| o.map_entry()) {
                continue;
            }
            let mut nested_path = path.clone();
            nested_path.extend([3, index as i32]);
            self.message(nested, nested_path);
        }
        for (index, nested) in message.enum_type.iter().enumerate() {
            let mut enum_path = path.clone();
            enum_path.extend([4, index as i32]);
            self.enumeration(nested, enum_path);
        }
    }

    fn enumeration(&mut self, enumeration: &EnumDescriptorProto, path: Vec<i32>) {
        let name = enumeration.name();
        if name.to_upper_camel_case() != name {
            self.report(&path, format!("enum `{name}` should be PascalCase"));
        }
        let zero = enumeration.value.iter().find(|v| v.number() == 0);
        if !zero.is_some_and(|v| v.name().ends_with("_UNSPECIFIED")) {
            self.report(
                &path,
                format!(
                    "enum `{name}` should have a zero value named `{}_UNSPECIFIED`",
                    name.to_snake_case().to_uppercase()
                ),
            );
        }
    }
}

/// Style findings in `files` (the user's root protos).
pub fn lint(files: &[&FileDescriptorProto]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for file in files {
        let mut linter = Linter {
            file,
            findings: Vec::new(),
        };
        let package = file.package();
        let versioned = package.rsplit('.').next().is_some_and(|last| {
            last.starts_with('v') && last[1..].starts_with(|c: char| c.is_ascii_digit())
        });
        if !versioned {
            linter.report(
                &[2],
                if package.is_empty() {
                    "the file has no package; use a versioned one such as `acme.orders.v1`"
                        .to_owned()
                } else {
                    format!("package `{package}` should end with a version such as `v1`")
                },
            );
        }
        for (index, service) in file.service.iter().enumerate() {
            let name = service.name();
            if name.to_upper_camel_case() != name {
                linter.report(
                    &[6, index as i32],
                    format!("service `{name}` should be PascalCase"),
                );
            }
        }
        for (index, message) in file.message_type.iter().enumerate() {
            linter.message(message, vec![4, index as i32]);
        }
        for (index, enumeration) in file.enum_type.iter().enumerate() {
            linter.enumeration(enumeration, vec![5, index as i32]);
        }
        findings.extend(linter.findings);
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{compile, ProtoInput};

    fn findings(source: &str) -> Vec<String> {
        let mut input = ProtoInput::default();
        input.memory.insert("a.proto", source);
        input.roots.push("a.proto".into());
        let compiled = compile(&input).expect("compiles");
        let root = compiled
            .descriptors
            .file
            .iter()
            .find(|f| f.name() == "a.proto")
            .unwrap();
        lint(&[root]).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_clean_file_has_no_findings() {
        let clean = "syntax = \"proto3\";\npackage acme.v1;\nservice OrderService { rpc Get(GetOrderRequest) returns (Order); }\nmessage GetOrderRequest { string order_id = 1; }\nmessage Order { map<string, string> labels = 1; Status status = 2; }\nenum Status { STATUS_UNSPECIFIED = 0; STATUS_OPEN = 1; }\n";
        assert!(findings(clean).is_empty(), "{:?}", findings(clean));
    }

    #[test]
    fn each_rule_reports_with_a_line() {
        let messy = "syntax = \"proto3\";\npackage acme;\nservice order_service { rpc Get(get_order) returns (get_order); }\nmessage get_order {\n  string orderId = 1;\n}\nenum Status { OPEN = 0; }\n";
        let found = findings(messy);
        let expected = [
            "a.proto:2: package `acme` should end with a version such as `v1`",
            "a.proto:3: service `order_service` should be PascalCase",
            "a.proto:4: message `get_order` should be PascalCase",
            "a.proto:5: field `get_order.orderId` should be lower_snake_case",
            "a.proto:7: enum `Status` should have a zero value named `STATUS_UNSPECIFIED`",
        ];
        assert_eq!(found, expected);
    }
}
