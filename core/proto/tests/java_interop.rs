//! Our protobuf bytes, read by Mesos's own Java classes.
//!
//! For every golden fixture whose fields Mesos 1.4 already had, this test
//! writes the protobuf bytes we produce, compiles
//! `conformance/java/MesosProtoCheck.java` against
//! `mesos-1.4.3-shaded-protobuf.jar` (shipped in pyspark 3.5.9's jars), and
//! runs it. The Java side parses each message with
//! `org.apache.mesos.v1.*.Protos` and prints
//!
//! * a dump of every field it recognised, by name, plus any field number it
//!   did not recognise, and
//! * the message as Mesos JSON, computed from Mesos's own descriptors.
//!
//! Both must equal what we compute from our descriptors. The jar is found
//! through `PANDO_PYSPARK_JARS` (a pyspark `jars` directory, which
//! `scripts/test` sets) or `PANDO_MESOS_JAR`. Without either the test is
//! skipped with a message, except under CI (`CI=true`), where a missing jar
//! is a failure.

#![allow(clippy::unwrap_used)]

mod fixtures;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

use base64::Engine as _;
use prost_reflect::{DynamicMessage, Kind, ReflectMessage, Value};

fn mesos_jar() -> Option<PathBuf> {
    if let Some(jar) = std::env::var_os("PANDO_MESOS_JAR") {
        return Some(PathBuf::from(jar));
    }
    let jars = PathBuf::from(std::env::var_os("PANDO_PYSPARK_JARS")?);
    Some(jars.join("mesos-1.4.3-shaded-protobuf.jar"))
}

fn java_source() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance/java/MesosProtoCheck.java")
}

/// Quotes a string as the Java checker does (rapidjson's escapes).
fn quote(s: &str) -> String {
    let mut out = String::new();
    pando_proto::json::write_string(s, &mut out);
    out
}

/// Dumps a message in the Java checker's format: set fields in field-number
/// order, by path.
fn dump(message: &DynamicMessage, prefix: &str, out: &mut String) {
    let mut fields: Vec<_> = message.descriptor().fields().collect();
    fields.sort_by_key(|f| f.number());
    for field in fields {
        if !message.has_field(&field) {
            continue;
        }
        let path = format!("{prefix}{}", field.name());
        match &*message.get_field(&field) {
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    dump_value(&field.kind(), item, &format!("{path}[{i}]"), out);
                }
            }
            value => dump_value(&field.kind(), value, &path, out),
        }
    }
}

fn dump_value(kind: &Kind, value: &Value, path: &str, out: &mut String) {
    let text = match value {
        Value::Message(inner) => return dump(inner, &format!("{path}."), out),
        Value::EnumNumber(n) => match kind {
            Kind::Enum(e) => e
                .get_value(*n)
                .map(|v| v.name().to_string())
                .unwrap_or(n.to_string()),
            _ => n.to_string(),
        },
        Value::Bytes(b) => base64::engine::general_purpose::STANDARD.encode(b),
        Value::F64(f) => format!("0x{:x}", f.to_bits()),
        Value::F32(f) => format!("0x{:x}", f64::from(*f).to_bits()),
        Value::String(s) => quote(s),
        Value::Bool(b) => b.to_string(),
        Value::I32(n) => n.to_string(),
        Value::I64(n) => n.to_string(),
        // Java has no unsigned types: it prints the same bits as signed.
        Value::U32(n) => (*n as i32).to_string(),
        Value::U64(n) => (*n as i64).to_string(),
        Value::List(_) | Value::Map(_) => panic!("{path}: nested collections are not in fixtures"),
    };
    let _ = writeln!(out, "{path} = {text}");
}

#[test]
fn mesos_java_classes_read_our_protobuf_exactly() {
    let Some(jar) = mesos_jar().filter(|j| j.is_file()) else {
        let why = "mesos-1.4.3-shaded-protobuf.jar not found: set PANDO_PYSPARK_JARS to \
                   pyspark 3.5.9's jars directory (scripts/test does) or PANDO_MESOS_JAR";
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "under CI this test must run: {why}"
        );
        eprintln!("SKIPPED java interop: {why}");
        return;
    };

    let work = tempfile::tempdir().unwrap();
    let status = Command::new("javac")
        .arg("-cp")
        .arg(&jar)
        .arg("-d")
        .arg(work.path())
        .arg(java_source())
        .status()
        .expect("javac runs (Java 17 is required for this test)");
    assert!(status.success(), "javac failed on MesosProtoCheck.java");

    let mut manifest = String::new();
    let mut expected = String::new();
    let mut checked = 0;
    for fixture in fixtures::load_all() {
        let Some(class) = &fixture.java_class else {
            continue;
        };
        let decoded = fixtures::decode(&fixture);
        let bin = work.path().join(format!("{}.bin", fixture.name));
        std::fs::write(&bin, &decoded.protobuf).unwrap();
        let _ = writeln!(manifest, "{class} {}", bin.display());

        let descriptor = pando_proto::descriptor_pool()
            .get_message_by_name(&fixture.message)
            .unwrap();
        let dynamic = DynamicMessage::decode(descriptor, decoded.protobuf.as_slice()).unwrap();
        let _ = writeln!(expected, "== {}", bin.display());
        dump(&dynamic, "", &mut expected);
        let _ = writeln!(expected, "json {}", decoded.json);
        checked += 1;
    }
    assert!(
        checked >= 10,
        "too few fixtures carry a java_class ({checked})"
    );
    let manifest_path = work.path().join("manifest.txt");
    std::fs::write(&manifest_path, manifest).unwrap();

    let classpath = format!("{}:{}", jar.display(), work.path().display());
    let output = Command::new("java")
        .arg("-cp")
        .arg(classpath)
        .arg("MesosProtoCheck")
        .arg(&manifest_path)
        .output()
        .expect("java runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "MesosProtoCheck failed:\n{stderr}");
    let actual = String::from_utf8(output.stdout).unwrap();

    if actual != expected {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .filter(|(e, a)| e != a)
            .take(20)
            .map(|(e, a)| format!("  ours: {e}\n  java: {a}"))
            .collect();
        panic!(
            "Mesos's Java classes read our bytes differently ({} vs {} lines):\n{}",
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
    println!("java interop: {checked} messages read identically by Mesos 1.4.3's classes");
}
