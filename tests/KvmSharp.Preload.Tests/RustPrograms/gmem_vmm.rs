// SPDX-License-Identifier: MIT
//
// A VMM in Rust (std only, no crates) whose guest lives in guest_memfd memory alone: open /dev/kvm, ask
// KVM_CAP_GUEST_MEMFD and KVM_CAP_GUEST_MEMFD_FLAGS, create a guest_memfd with MMAP | INIT_SHARED, map it, put the
// guest's code and data in it, bind it with KVM_SET_USER_MEMORY_REGION2 and run a real-mode guest that reads a byte,
// reports it on a port and writes another back. Built with rustc in the test run; the same binary runs on the real
// kernel and, through `kvmsharp exec --kernel emulated`, on the emulated one (Rust's std opens files through libc,
// which the preload library sees).
use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::process::exit;

extern "C" {
    fn ioctl(fd: i32, request: u64, ...) -> i32;
    fn mmap(addr: *mut u8, len: usize, prot: i32, flags: i32, fd: i32, offset: i64) -> *mut u8;
}

// include/uapi/linux/kvm.h (6.18): _IO/_IOW/_IOWR(KVMIO = 0xAE, nr, size).
const KVM_CHECK_EXTENSION: u64 = 0xAE03;
const KVM_CREATE_VM: u64 = 0xAE01;
const KVM_GET_VCPU_MMAP_SIZE: u64 = 0xAE04;
const KVM_CREATE_VCPU: u64 = 0xAE41;
const KVM_RUN: u64 = 0xAE80;
const KVM_GET_SREGS: u64 = 0x8138AE83;
const KVM_SET_SREGS: u64 = 0x4138AE84;
const KVM_SET_REGS: u64 = 0x4090AE82;
const KVM_CREATE_GUEST_MEMFD: u64 = 0xC040AED4;
const KVM_SET_USER_MEMORY_REGION2: u64 = 0x40A0AE49;
const KVM_CAP_GUEST_MEMFD: u64 = 234;
const KVM_CAP_GUEST_MEMFD_FLAGS: u64 = 244;
const GUEST_MEMFD_FLAG_MMAP: u64 = 1 << 0;
const GUEST_MEMFD_FLAG_INIT_SHARED: u64 = 1 << 1;
const KVM_MEM_GUEST_MEMFD: u32 = 1 << 2;
const KVM_EXIT_IO: u32 = 2;
const KVM_EXIT_HLT: u32 = 5;

#[repr(C)]
struct KvmCreateGuestMemfd {
    size: u64,
    flags: u64,
    reserved: [u64; 6],
}

#[repr(C)]
struct KvmUserspaceMemoryRegion2 {
    slot: u32,
    flags: u32,
    guest_phys_addr: u64,
    memory_size: u64,
    userspace_addr: u64,
    guest_memfd_offset: u64,
    guest_memfd: u32,
    pad1: u32,
    pad2: [u64; 14],
}

// Real mode at 0:  mov al, [0x1000] (A0 00 10) ; out 0x10, al (E6 10) ; mov byte [0x1000], 0x5a (C6 06 00 10 5A) ; hlt
const GUEST: [u8; 11] = [0xa0, 0x00, 0x10, 0xe6, 0x10, 0xc6, 0x06, 0x00, 0x10, 0x5a, 0xf4];
const MEMORY: usize = 0x2000;

fn check(what: &str, rc: i32) -> i32 {
    if rc < 0 {
        eprintln!("{what}: {}", std::io::Error::last_os_error());
        exit(1);
    }
    rc
}

fn main() {
    let kvm = OpenOptions::new().read(true).write(true).open("/dev/kvm").unwrap_or_else(|e| {
        eprintln!("/dev/kvm: {e}");
        exit(1)
    });
    let kvm = kvm.as_raw_fd();
    let gmem_cap = unsafe { ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD) };
    if gmem_cap <= 0 {
        println!("no guest_memfd: KVM_CAP_GUEST_MEMFD = {gmem_cap}");
        return;
    }
    let vm = check("KVM_CREATE_VM", unsafe { ioctl(kvm, KVM_CREATE_VM, 0u64) });
    let flags = unsafe { ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_FLAGS) } as u64;
    let wanted = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;
    println!("KVM_CAP_GUEST_MEMFD_FLAGS = {flags:#x}");
    if flags & wanted != wanted {
        println!("no mappable guest_memfd for this VM");
        return;
    }
    let mut create = KvmCreateGuestMemfd { size: MEMORY as u64, flags: wanted, reserved: [0; 6] };
    let gmem = check("KVM_CREATE_GUEST_MEMFD", unsafe { ioctl(vm, KVM_CREATE_GUEST_MEMFD, &mut create as *mut _) });
    // PROT_READ | PROT_WRITE, MAP_SHARED
    let memory = unsafe { mmap(std::ptr::null_mut(), MEMORY, 3, 1, gmem, 0) };
    if memory as isize == -1 {
        eprintln!("mmap(guest_memfd): {}", std::io::Error::last_os_error());
        exit(1);
    }
    let memory = unsafe { std::slice::from_raw_parts_mut(memory, MEMORY) };
    memory[..GUEST.len()].copy_from_slice(&GUEST);
    memory[0x1000] = 0x2a;
    let region = KvmUserspaceMemoryRegion2 {
        slot: 0,
        flags: KVM_MEM_GUEST_MEMFD,
        guest_phys_addr: 0,
        memory_size: MEMORY as u64,
        userspace_addr: memory.as_ptr() as u64,
        guest_memfd_offset: 0,
        guest_memfd: gmem as u32,
        pad1: 0,
        pad2: [0; 14],
    };
    check("KVM_SET_USER_MEMORY_REGION2", unsafe { ioctl(vm, KVM_SET_USER_MEMORY_REGION2, &region as *const _) });
    let vcpu = check("KVM_CREATE_VCPU", unsafe { ioctl(vm, KVM_CREATE_VCPU, 0u64) });
    let run_size = check("KVM_GET_VCPU_MMAP_SIZE", unsafe { ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0u64) }) as usize;
    let run = unsafe { mmap(std::ptr::null_mut(), run_size, 3, 1, vcpu, 0) };
    // struct kvm_sregs (312 bytes): cs is its first struct kvm_segment — base u64 at 0, selector u16 at 12.
    let mut sregs = [0u8; 312];
    check("KVM_GET_SREGS", unsafe { ioctl(vcpu, KVM_GET_SREGS, sregs.as_mut_ptr()) });
    sregs[0..8].copy_from_slice(&0u64.to_le_bytes());
    sregs[12..14].copy_from_slice(&0u16.to_le_bytes());
    check("KVM_SET_SREGS", unsafe { ioctl(vcpu, KVM_SET_SREGS, sregs.as_ptr()) });
    // struct kvm_regs: 18 u64, rip the 17th, rflags the 18th.
    let mut regs = [0u64; 18];
    regs[17] = 2;
    check("KVM_SET_REGS", unsafe { ioctl(vcpu, KVM_SET_REGS, regs.as_ptr()) });
    // struct kvm_run: exit_reason u32 at 8; io (direction u8, size u8, port u16, count u32, data_offset u64) at 32.
    let exit_reason = || unsafe { std::ptr::read_volatile(run.add(8) as *const u32) };
    check("KVM_RUN", unsafe { ioctl(vcpu, KVM_RUN, 0u64) });
    if exit_reason() != KVM_EXIT_IO {
        println!("unexpected exit {}", exit_reason());
        exit(1);
    }
    let (port, data) = unsafe {
        let port = std::ptr::read_volatile(run.add(34) as *const u16);
        let offset = std::ptr::read_volatile(run.add(40) as *const u64) as usize;
        (port, *run.add(offset))
    };
    check("KVM_RUN", unsafe { ioctl(vcpu, KVM_RUN, 0u64) });
    let halted = exit_reason() == KVM_EXIT_HLT;
    println!("guest read {data:#x} from guest_memfd (port {port:#x}), wrote {:#x} back, halted: {halted}", memory[0x1000]);
}
