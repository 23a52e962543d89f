//! The generated inputs: workflow files, files to hash, argument lists, a Go program.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// The fan-out of `std.echo` jobs over `std.range`, then `std.sum`; `n` is an input.
pub const FAN_OUT: &str = r#"inputs:
  n: {type: integer, default: 1000}
stages:
  numbers:
    job: std.range
    with: {end: "${{ inputs.n }}"}
  echo:
    for_each: ${{ stages.numbers.output }}
    job: std.echo
    with: {value: "${{ item }}"}
  total:
    job: std.sum
    with: {values: "${{ stages.echo.outputs }}"}
outputs:
  total: ${{ stages.total.output }}
"#;

/// One `std.echo` stage.
pub const ONE_STAGE: &str = "stages:\n  one:\n    job: std.echo\n    with: {value: 1}\n";

/// `hash.sha256` over the files `dir/f0` .. `dir/f{n-1}`, then a count of the digests.
pub fn hashing(n: usize, dir: &Path) -> String {
    let dir = serde_json::to_string(&dir.display().to_string()).unwrap_or_default();
    let dir = dir.trim_matches('"');
    format!(
        "stages:\n  numbers:\n    job: std.range\n    with: {{end: {n}}}\n  digest:\n    \
         for_each: ${{{{ stages.numbers.output }}}}\n    job: hash.sha256\n    \
         with: {{path: \"{dir}/f${{{{ item }}}}\"}}\noutputs:\n  \
         digests: ${{{{ stages.digest.outputs | length }}}}\n"
    )
}

/// `n` runs of `true` through `shell.run`, two at a time.
pub fn shell(n: usize) -> String {
    format!(
        "stages:\n  numbers:\n    job: std.range\n    with: {{end: {n}}}\n  truths:\n    \
         for_each: ${{{{ stages.numbers.output }}}}\n    max_parallel: 2\n    \
         job: shell.run\n    with: {{argv: [\"true\"]}}\n"
    )
}

/// `n` stages of `std.echo`, each needing the one before (`chain`) or none (`wide`).
pub fn graph(n: usize, chain: bool) -> String {
    let mut yaml = String::from("stages:\n");
    for stage in 0..n {
        let _ = writeln!(yaml, "  s{stage}:");
        if chain && stage > 0 {
            let _ = writeln!(yaml, "    needs: s{}", stage - 1);
        }
        let _ = writeln!(yaml, "    job: std.echo\n    with: {{value: {stage}}}");
    }
    yaml
}

/// `n` sleepers on the waiting lane, then a failure after `trigger_ms`.
pub fn cancel(n: usize, trigger_ms: u64) -> String {
    format!(
        "grace: 5s\nstages:\n  sleepers:\n    for_each: ${{{{ range({n}) | list }}}}\n    \
         max_parallel: {n}\n    job: std.sleep\n    with: {{duration: 60s}}\n  trigger:\n    \
         job: std.sleep\n    with: {{duration: {trigger_ms}ms}}\n  boom:\n    needs: trigger\n    \
         job: std.fail\n    with: {{message: now}}\n"
    )
}

/// Writes `count` files `f0`, `f1`, ... of `bytes` pseudo-random bytes into `dir`, and
/// returns the file listing their paths, one a line.
pub fn files_to_hash(dir: &Path, count: usize, bytes: usize) -> io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut buffer = vec![0_u8; bytes];
    let mut list = String::new();
    for index in 0..count {
        for chunk in buffer.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        let path = dir.join(format!("f{index}"));
        fs::File::create(&path)?.write_all(&buffer)?;
        let _ = writeln!(list, "{}", path.display());
    }
    let list_path = dir.join("list.txt");
    fs::write(&list_path, list)?;
    Ok(list_path)
}

/// The classic Go channel pool over the same fan-out: JSON in, a no-op, JSON out, into
/// its slot, then the sum. It prints the nanoseconds it took.
pub const GO_POOL: &str = r#"package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	start := time.Now()
	jobs := make(chan int, 1024)
	slots := make([]int64, n)
	var wg sync.WaitGroup
	for w := 0; w < runtime.NumCPU(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				in, _ := json.Marshal(map[string]int{"value": i})
				var input struct {
					Value int64 `json:"value"`
				}
				_ = json.Unmarshal(in, &input)
				out, _ := json.Marshal(input.Value)
				var value int64
				_ = json.Unmarshal(out, &value)
				slots[i] = value
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	var sum int64
	for _, v := range slots {
		sum += v
	}
	if sum != int64(n)*int64(n-1)/2 {
		os.Exit(1)
	}
	fmt.Println(time.Since(start).Nanoseconds())
}
"#;
