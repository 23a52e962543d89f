//! Building the plugins the tests load: the shipped ones (into the workspace's target folder,
//! beside the `weft` binary, where a user's build puts them) and the test-only ones (into a
//! folder of their own, which no user's run searches).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The folders holding the test-only plugins, one plugin per folder.
pub struct TestPlugins {
    /// `misbehave`: jobs that panic, ignore cancellation, return huge outputs.
    pub misbehave: PathBuf,
    /// `raw`: jobs that break the ABI's rules (invalid UTF-8 or JSON, no output).
    pub raw: PathBuf,
    /// A library built for another ABI major version.
    pub wrong_abi: PathBuf,
    /// A library whose descriptor has the wrong magic number.
    pub wrong_magic: PathBuf,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn run(mut command: Command) {
    let output = command.output().expect("cargo should start");
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Builds the shipped plugins beside the `weft` binary (a no-op when they are up to date) and
/// returns that folder.
pub fn shipped() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut command = cargo();
        command.current_dir(root()).args(["build", "--quiet"]);
        for plugin in ["weft-std", "weft-text", "weft-hash", "weft-shell"] {
            command.args(["-p", plugin]);
        }
        run(command);
        Path::new(env!("CARGO_BIN_EXE_weft"))
            .parent()
            .expect("the binary is in a folder")
            .to_owned()
    })
}

/// Builds the test-only plugins once per test binary and returns their folders.
pub fn test_only() -> &'static TestPlugins {
    static BUILT: OnceLock<TestPlugins> = OnceLock::new();
    BUILT.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-plugins");
        let target = base.join("target");
        let build = |crate_name: &str, features: &[&str], library: &str, folder: &str| {
            let mut command = cargo();
            command
                .current_dir(root())
                .args(["build", "--quiet", "--manifest-path"])
                .arg(
                    root()
                        .join("tests/plugins")
                        .join(crate_name)
                        .join("Cargo.toml"),
                )
                .arg("--target-dir")
                .arg(&target);
            if !features.is_empty() {
                command.args(["--features", &features.join(",")]);
            }
            run(command);

            let folder = base.join(folder);
            std::fs::create_dir_all(&folder).expect("the test plugin folder can be made");
            let file = format!("lib{library}.{}", std::env::consts::DLL_EXTENSION);
            std::fs::copy(target.join("debug").join(&file), folder.join(&file))
                .expect("the built library can be copied");
            folder
        };

        TestPlugins {
            misbehave: build("misbehave", &[], "weft_test_misbehave", "misbehave"),
            raw: build("raw", &[], "weft_test_raw", "raw"),
            wrong_abi: build("raw", &["wrong-abi"], "weft_test_raw", "wrong-abi"),
            wrong_magic: build("raw", &["wrong-magic"], "weft_test_raw", "wrong-magic"),
        }
    })
}
