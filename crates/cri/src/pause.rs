//! The pause program every sandbox runs, made by the project (never pulled): a 230-byte static
//! x86-64 Linux ELF that blocks SIGINT, SIGTERM and SIGCHLD, reaps children on SIGCHLD and exits 0 on
//! SIGINT or SIGTERM. The machine code is written out below with its assembly.

/// Where the program is loaded.
const BASE: u64 = 0x40_0000;
/// ELF header (64 bytes) + one program header (56 bytes).
const HEADERS: u64 = 120;

/// The machine code; `set` (the signal mask) is its last 8 bytes.
const CODE: [u8; 98] = [
    // _start: rt_sigprocmask(SIG_BLOCK, &set, NULL, 8)
    0xb8, 0x0e, 0x00, 0x00, 0x00, // mov $14, %eax
    0x31, 0xff, // xor %edi, %edi
    0x48, 0x8d, 0x35, 0x4c, 0x00, 0x00, 0x00, // lea set(%rip), %rsi
    0x31, 0xd2, // xor %edx, %edx
    0x41, 0xba, 0x08, 0x00, 0x00, 0x00, // mov $8, %r10d
    0x0f, 0x05, // syscall
    // wait: rt_sigtimedwait(&set, NULL, NULL, 8)
    0xb8, 0x80, 0x00, 0x00, 0x00, // mov $128, %eax
    0x48, 0x8d, 0x3d, 0x36, 0x00, 0x00, 0x00, // lea set(%rip), %rdi
    0x31, 0xf6, // xor %esi, %esi
    0x31, 0xd2, // xor %edx, %edx
    0x41, 0xba, 0x08, 0x00, 0x00, 0x00, // mov $8, %r10d
    0x0f, 0x05, // syscall
    0x83, 0xf8, 0x11, // cmp $17 (SIGCHLD), %eax
    0x75, 0x1c, // jne out
    // reap: wait4(-1, NULL, WNOHANG, NULL) while it returns a child
    0xb8, 0x3d, 0x00, 0x00, 0x00, // mov $61, %eax
    0xbf, 0xff, 0xff, 0xff, 0xff, // mov $-1, %edi
    0x31, 0xf6, // xor %esi, %esi
    0xba, 0x01, 0x00, 0x00, 0x00, // mov $1, %edx
    0x45, 0x31, 0xd2, // xor %r10d, %r10d
    0x0f, 0x05, // syscall
    0x85, 0xc0, // test %eax, %eax
    0x7f, 0xe6, // jg reap
    0xeb, 0xc7, // jmp wait
    // out: exit_group(0)
    0xb8, 0xe7, 0x00, 0x00, 0x00, // mov $231, %eax
    0x31, 0xff, // xor %edi, %edi
    0x0f, 0x05, // syscall
    // set: SIGINT | SIGTERM | SIGCHLD (bit n-1 for signal n)
    0x02, 0x40, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// The whole executable.
pub fn elf() -> Vec<u8> {
    let size = HEADERS + CODE.len() as u64;
    let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // ELF header: 64-bit, little endian, version 1, System V ABI.
    out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    out.extend_from_slice(&0x3eu16.to_le_bytes()); // EM_X86_64
    out.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    out.extend_from_slice(&(BASE + HEADERS).to_le_bytes()); // entry
    out.extend_from_slice(&64u64.to_le_bytes()); // program headers offset
    out.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    out.extend_from_slice(&0u32.to_le_bytes()); // flags
    out.extend_from_slice(&64u16.to_le_bytes()); // header size
    out.extend_from_slice(&56u16.to_le_bytes()); // program header size
    out.extend_from_slice(&1u16.to_le_bytes()); // one program header
    out.extend_from_slice(&64u16.to_le_bytes()); // section header size
    out.extend_from_slice(&0u16.to_le_bytes()); // no sections
    out.extend_from_slice(&0u16.to_le_bytes()); // no section names
    // PT_LOAD of the whole file, read + execute.
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&5u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // offset
    out.extend_from_slice(&BASE.to_le_bytes()); // vaddr
    out.extend_from_slice(&BASE.to_le_bytes()); // paddr
    out.extend_from_slice(&size.to_le_bytes()); // file size
    out.extend_from_slice(&size.to_le_bytes()); // memory size
    out.extend_from_slice(&0x1000u64.to_le_bytes()); // alignment
    out.extend_from_slice(&CODE);
    out
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;
    use std::time::{Duration, Instant};

    #[test]
    fn the_program_waits_for_sigterm_and_exits_zero() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pause");
        std::fs::write(&path, super::elf()).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let mut child = Command::new(&path).spawn().expect("spawn");
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "exited early"
        );
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let start = Instant::now();
        let exit = loop {
            if let Some(exit) = child.try_wait().expect("try_wait") {
                break exit;
            }
            assert!(start.elapsed() < Duration::from_secs(5), "still running");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(exit.code(), Some(0));
    }
}
