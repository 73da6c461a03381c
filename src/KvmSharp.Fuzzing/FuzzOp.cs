// SPDX-License-Identifier: MIT
using System.Globalization;

namespace KvmSharp.Fuzzing;

/// <summary>The calls the fuzzer makes. Each names its logical handles by number so a sequence replays anywhere.</summary>
public enum OpKind
{
    /// <summary>open("/dev/kvm") → system handle <c>Result</c>.</summary>
    OpenKvm,
    /// <summary>KVM_CREATE_VM(type = A) on system handle <c>Target</c> → VM handle.</summary>
    CreateVm,
    /// <summary>KVM_CHECK_EXTENSION(cap = A) on handle <c>Target</c>.</summary>
    CheckExtension,
    /// <summary>KVM_CREATE_GUEST_MEMFD(size = A, flags = B) on VM <c>Target</c> → gmem handle.</summary>
    CreateGmem,
    /// <summary>fallocate(gmem <c>Target</c>, mode = E, offset = A, len = B).</summary>
    Fallocate,
    /// <summary>
    /// KVM_SET_USER_MEMORY_REGION2 on VM <c>Target</c>: slot = E, flags = (uint)D, gpa = A, size = B, gmem = <c>Other</c>,
    /// offset = C, userspace_addr = U (an address the fuzzer never maps: no guest runs in a session's VMs).
    /// </summary>
    SetRegion2,
    /// <summary>mmap(gmem <c>Target</c>, length = A, offset = B, MAP_SHARED if E == 0 else MAP_PRIVATE) → mapping handle.</summary>
    Mmap,
    /// <summary>Host access to mapping <c>Target</c> at byte A: write byte (B &amp; 0xff) if C != 0, else read.</summary>
    Touch,
    /// <summary>munmap(mapping <c>Target</c>).</summary>
    Munmap,
    /// <summary>close(handle <c>Target</c>).</summary>
    Close,
    /// <summary>fstat(handle <c>Target</c>).</summary>
    Fstat,
    /// <summary>read/write/pread/pwrite/lseek/ftruncate (E = 0..5) on handle <c>Target</c>, length/offset A.</summary>
    FileIo,
    /// <summary>KVM_SET_MEMORY_ATTRIBUTES on VM <c>Target</c>: address A, size B, attributes C, flags D.</summary>
    SetAttributes,
    /// <summary>KVM_SET_MEMORY_ATTRIBUTES2 on gmem <c>Target</c>: offset A, size B, attributes C, flags D.</summary>
    SetAttributes2,
    /// <summary>KVM_ENABLE_CAP on VM <c>Target</c>: cap = A, flags = B, args[0] = C.</summary>
    EnableCap,
    /// <summary>KVM_SET_TSS_ADDR(A) on VM <c>Target</c>.</summary>
    SetTssAddr,
    /// <summary>KVM_CREATE_VCPU(id = A) on VM <c>Target</c> → vCPU handle (its kvm_run page is mapped too).</summary>
    CreateVcpu,
    /// <summary>
    /// KVM_SET_REGS with registers drawn from seed A, then KVM_GET_REGS, on vCPU <c>Target</c>; E = 1 allows values on
    /// which a divergence is already reported (<see cref="ReportedDivergences"/>).
    /// </summary>
    RegsRoundTrip,
    /// <summary>KVM_GET_SREGS, mutation E with seed A, KVM_SET_SREGS, KVM_GET_SREGS on vCPU <c>Target</c>.</summary>
    SregsRoundTrip,
    /// <summary>KVM_RUN on vCPU <c>Target</c> with kvm_run.immediate_exit = E.</summary>
    RunVcpu,
    /// <summary>KVM_PRE_FAULT_MEMORY on vCPU <c>Target</c>: gpa A, size B, flags C.</summary>
    PreFault,
    /// <summary>madvise(mapping <c>Target</c> + A, length B, advice E).</summary>
    Madvise,
    /// <summary>
    /// A tiny guest on system handle <c>Target</c>: a fresh VM, one memory slot and one vCPU running a program generated
    /// from seed A (E bit 0: 0 = 64-bit, 1 = real mode; E bit 1 (<see cref="FuzzOp.GuestRunInHostMemory"/>): the slot
    /// is anonymous host memory instead of a guest_memfd; E bit 2 (<see cref="FuzzOp.GuestRunDirtyLog"/>): the slot
    /// logs dirty pages, the guest runs twice and the logs are compared; E bit 3
    /// (<see cref="FuzzOp.GuestRunFarTransfers"/>): a 64-bit program also makes far JMP/CALL/RET through the GDT's
    /// code selector; E bit 4 (<see cref="FuzzOp.GuestRunWithReported"/>): draws on which kvm_pvm is known to differ);
    /// exits, final registers and memory are compared.
    /// </summary>
    GuestRun,
    /// <summary>
    /// KVM_GET_DIRTY_LOG on VM <c>Target</c>: slot = (uint)A (as_id &lt;&lt; 16 | id), dirty_bitmap at
    /// <see cref="DirtyBitmapAt"/> D (+ C bytes into the session's scratch page). The bitmap bytes written are compared.
    /// </summary>
    GetDirtyLog,
    /// <summary>
    /// KVM_CLEAR_DIRTY_LOG on VM <c>Target</c>: slot = (uint)A, first_page = B, num_pages = (uint)E, dirty_bitmap at
    /// <see cref="DirtyBitmapAt"/> D (+ U bytes into the scratch page, which holds the mask: every word C).
    /// </summary>
    ClearDirtyLog,
    /// <summary>
    /// KVM_GET_MSRS (E bit 0 clear) or KVM_SET_MSRS then KVM_GET_MSRS of the same indices (E bit 0 set) on vCPU
    /// <c>Target</c>: C entries drawn from seed A (<see cref="X86StateOps"/>), header nmsrs = (uint)B; E bit 1 also draws
    /// values on which a divergence is already reported.
    /// </summary>
    MsrsIo,
    /// <summary>
    /// KVM_SET_CPUID2 (unless E bit 0) of C entries drawn from seed A with header nent = (uint)B, then KVM_GET_CPUID2 with
    /// nent = (uint)D, on vCPU <c>Target</c> (<see cref="X86StateOps"/>).
    /// </summary>
    CpuidRoundTrip,
    /// <summary>
    /// A system list on handle <c>Target</c> with count (uint)B: E = 0 KVM_GET_SUPPORTED_CPUID, 1 KVM_GET_EMULATED_CPUID,
    /// 2 KVM_GET_MSR_INDEX_LIST, 3 KVM_GET_MSR_FEATURE_INDEX_LIST, 4 KVM_GET_MSRS (feature MSRs, C entries from seed A).
    /// Only the rule-level outcome is compared: errno, whether the count was written back, entries processed.
    /// </summary>
    SystemX86List,
    /// <summary>
    /// A tiny 64-bit guest in host memory on system handle <c>Target</c> that executes CPUID, RDMSR and WRMSR drawn from
    /// seed A after a KVM_SET_CPUID2 of a table drawn from the same seed, then KVM_SET_CPUID2 again after KVM_RUN
    /// (<see cref="TinyGuestRun.RunX86State"/>); E bit 1 also draws values on which a divergence is already reported.
    /// </summary>
    X86GuestRun,
    /// <summary>
    /// An x86 vCPU state pair on vCPU <c>Target</c> (<see cref="VcpuStateOps"/>): E &amp; 7 = 0 FPU, 1 XCRS, 2 VCPU_EVENTS,
    /// 3 MP_STATE, 4 DEBUGREGS. KVM_SET_* of a struct drawn from seed A (unless E has <see cref="VcpuStateOps.GetOnly"/>;
    /// XCRS with <see cref="VcpuStateOps.CpuidFirst"/>: a KVM_SET_CPUID2 of a one-entry table without leaf 0xD first), then KVM_GET_*,
    /// every byte compared.
    /// </summary>
    VcpuStateRoundTrip,
    /// <summary>
    /// KVM_SET_GUEST_DEBUG on vCPU <c>Target</c> with control bits and debug registers drawn from seed A
    /// (<see cref="GuestDebugOps"/>), then KVM_GET_VCPU_EVENTS and KVM_GET_DEBUGREGS (every byte), then
    /// KVM_SET_GUEST_DEBUG(0): host debugging never outlives the op (a queued INJECT_DB/BP exception does).
    /// </summary>
    GuestDebugSet,
    /// <summary>
    /// A tiny 64-bit guest with an IDT in host memory on system handle <c>Target</c>, debugged from the host
    /// (<see cref="TinyGuestRun.RunGuestDebug"/>): phases of KVM_SET_GUEST_DEBUG drawn from seed A, each followed by
    /// a few KVM_RUNs whose exits are all compared, then debugging off and a last run to HLT.
    /// </summary>
    GuestDebugRun,
    /// <summary>
    /// Guest time on handle <c>Target</c> (<see cref="ClockOps"/>): E = 0 KVM_GET_CLOCK, 1 KVM_SET_CLOCK (clock A, flags
    /// (uint)B, realtime by C &amp; 3 and U, pads non-zero with C bit 4) then KVM_GET_CLOCK, 2 both at a bad pointer.
    /// Errnos and flags compared exactly, the clock only against the value set.
    /// </summary>
    Clock,
    /// <summary>
    /// KVM_SET_TSC_KHZ (unless E = 0) of a rate of kind A (ppm B, random C) relative to the host's, then KVM_GET_TSC_KHZ,
    /// on handle <c>Target</c> (<see cref="ClockOps.Rate"/>).
    /// </summary>
    TscKhz,
    /// <summary>
    /// KVM_HAS/GET/SET_DEVICE_ATTR (<see cref="DeviceAttrOps"/>: E) on handle <c>Target</c>: group (uint)A, attr B, flags
    /// (uint)C, the value at <see cref="DirtyBitmapAt"/> D (a SET's value U). The result compared, and a GET's value on
    /// /dev/kvm.
    /// </summary>
    DeviceAttr,
    /// <summary>
    /// The NUMA calls on the session's anonymous pages (<see cref="MempolicyOps"/>: E the call): mbind (mode (int)A,
    /// mask word B, maxnode C, flags from U), get_mempolicy (flags from U), move_pages of up to 20 pointers, or a page
    /// written or read; user pointers at <see cref="DirtyBitmapAt"/> D. Result, policy, mask word and statuses compared.
    /// </summary>
    Mempolicy,
    /// <summary>
    /// An event from a userspace irqchip on vCPU <c>Target</c> (<see cref="InterruptOps"/>: E &amp; 7 the call,
    /// KVM_INTERRUPT, a bad pointer for it, KVM_NMI, KVM_X86_SET_MCE or a bad pointer for it; E's
    /// <see cref="InterruptOps.SetupFirst"/>, <see cref="InterruptOps.FlipCr4Mce"/> and <see cref="InterruptOps.FlipIf"/>
    /// steps first), arguments drawn from seed A; then KVM_GET_VCPU_EVENTS (every byte), the MCE MSRs after
    /// KVM_X86_SET_MCE and the kvm_run fields of a KVM_RUN with immediate_exit.
    /// </summary>
    InterruptQueue,
    /// <summary>
    /// A tiny 64-bit guest with a 256-gate IDT in host memory on system handle <c>Target</c>, given KVM_INTERRUPT, KVM_NMI
    /// and KVM_X86_SET_MCE between KVM_RUNs, some asking for the interrupt window (<see cref="TinyGuestRun.RunInterrupts"/>,
    /// program and events from seed A): every exit, the vector delivered and the kvm_run fields compared.
    /// </summary>
    /// <summary>
    /// KVM_IOEVENTFD / KVM_IRQFD on handle <c>Target</c> and the session's eventfds (<see cref="IoEventFdOps"/>: E the
    /// call, U the eventfd slot): address A, datamatch B, length (uint)C, flags (uint)D; or an eventfd read, write or
    /// re-creation. The result compared (and a read's count).
    /// </summary>
    IoEventFd,
    InterruptGuestRun,
    /// <summary>
    /// KVM_CREATE_DEVICE on handle <c>Target</c>, or an attribute ioctl or close on one of the session's devices
    /// (<see cref="DeviceCtlOps"/>: E the call, U the device slot, A/B type and flags or group and attribute, C the
    /// value's kind, D a /dev/kvm handle). The errno compared.
    /// </summary>
    DeviceCtl,
    /// <summary>
    /// An x86 in-kernel irqchip session on a VM made from /dev/kvm handle <c>Target</c>, calls drawn from seed A
    /// (<see cref="IrqchipOps"/>). The errno, statuses, counts, state bytes and run-page fields compared.
    /// </summary>
    Irqchip,
    /// <summary>
    /// The dirty ring on a fresh VM made from /dev/kvm handle <c>Target</c> (<see cref="TinyGuestRun.RunDirtyRing"/>,
    /// everything drawn from seed A): KVM_ENABLE_CAP of KVM_CAP_DIRTY_LOG_RING(_ACQ_REL) around its rules, the vCPU's
    /// ring mapped, a 64-bit guest writing pages, the entries harvested at every KVM_EXIT_DIRTY_RING_FULL and at the
    /// end, KVM_RESET_DIRTY_RINGS' counts and a second run. Every step's result and every entry compared.
    /// </summary>
    DirtyRingRun,
    /// <summary>
    /// A 64-bit guest with the in-kernel irqchip on a fresh VM made from /dev/kvm handle <c>Target</c> that takes an
    /// IOAPIC interrupt and writes the LAPIC EOI (<see cref="TinyGuestRun.RunLevelEoi"/>, pin, entry and pulses from
    /// seed A): statuses, exits and the IOAPIC state compared.
    /// </summary>
    LevelEoiGuestRun,
    /// <summary>
    /// A tiny guest in host memory on a fresh VM made from /dev/kvm handle <c>Target</c>, program from seed A: without E
    /// bit 0 a real-mode program whose interrupts and exceptions go through the IVT (<see cref="TinyGuestRun.RunRealModeIvt"/>),
    /// with it a 64-bit program loading the LDT and selectors from it (<see cref="TinyGuestRun.RunLdt"/>); E bit 1 also
    /// draws what a divergence is already reported on. Every exit, the registers and the memory the guest writes compared.
    /// </summary>
    IvtLdtGuestRun,
    /// <summary>
    /// KVM_SET_SIGNAL_MASK on handle <c>Target</c> (<see cref="SignalMaskOps"/>: E the argument's kind — len (uint)B
    /// then the sigset A, NULL, or a kernel-half pointer). The result compared.
    /// </summary>
    SignalMask,
    /// <summary>
    /// KVM_X86_SET_MSR_FILTER or KVM_ENABLE_CAP(KVM_CAP_X86_USER_SPACE_MSR) on handle <c>Target</c>
    /// (<see cref="MsrFilterOps"/>: E the call — a filter drawn from seed A, a bad pointer (A bit 0), or the cap with
    /// args[0] A, args[1] C and flags (uint)B). The errno compared.
    /// </summary>
    MsrFilter,
    /// <summary>
    /// A 64-bit guest on a fresh VM made from /dev/kvm handle <c>Target</c> with an MSR filter and userspace MSR exits,
    /// running RDMSR/WRMSR (<see cref="TinyGuestRun.RunMsrFilter"/>, everything from seed A): exits, registers, stored
    /// values, the MSRs read by the host and KVM_GET_CLOCK's flags compared.
    /// </summary>
    MsrFilterGuestRun,
    /// <summary>
    /// KVM_(UN)REGISTER_COALESCED_MMIO on handle <c>Target</c> (<see cref="CoalescedOps"/>: E the call, zone addr A,
    /// size (uint)B, pio (uint)C), a bad pointer, or the ring page of vCPU <c>Target</c> (written with D when A != 0).
    /// The errno compared, and the ring's first and last.
    /// </summary>
    Coalesced,
    /// <summary>
    /// A 64-bit guest on a fresh VM made from /dev/kvm handle <c>Target</c> with coalesced MMIO/PIO zones, writing MMIO
    /// and ports (<see cref="TinyGuestRun.RunCoalesced"/>, everything from seed A; E bit 1 also an 8-byte write across a
    /// page into MMIO, a known emulator divergence): exits and the ring compared.
    /// </summary>
    CoalescedGuestRun,
    /// <summary>
    /// KVM_SET_MSRS (E bit 0) and KVM_GET_MSRS of kvmclock MSRs drawn from seed A on vCPU <c>Target</c>, then KVM_GET_MSRS
    /// on vCPU <c>Other</c> (<see cref="KvmClockMsrOps"/>). Results and values compared.
    /// </summary>
    KvmClockMsrs,
}

/// <summary>
/// Where a dirty-log call's dirty_bitmap points (<see cref="OpKind.GetDirtyLog"/>, <see cref="OpKind.ClearDirtyLog"/>):
/// into a scratch mapping each session owns (a read/write page, a read-only page holding a fixed pattern, a PROT_NONE
/// page), at NULL or into the kernel half. Never at memory of this process other than the scratch: the kernels write
/// the bitmap there.
/// </summary>
public enum DirtyBitmapAt
{
    /// <summary>The read/write scratch page, at the op's byte offset.</summary>
    Scratch,
    /// <summary>NULL.</summary>
    Null,
    /// <summary>0xFFFF800000000000: access_ok fails.</summary>
    KernelHalf,
    /// <summary>The read-only page: copy_from_user reads the pattern, copy_to_user faults.</summary>
    ReadOnly,
    /// <summary>The PROT_NONE page: every copy faults.</summary>
    Guard,
    /// <summary>4 bytes before the read-only page: a write faults after its first 4 bytes, a read succeeds.</summary>
    StraddleReadOnly,
    /// <summary>4 bytes before the PROT_NONE page: a read faults after its first 4 bytes.</summary>
    StraddleGuard,
}

/// <summary>One call of a sequence. <see cref="Result"/> is the logical handle a creating call defines.</summary>
public sealed record FuzzOp(OpKind Kind, int Target = -1, int Other = -1, ulong A = 0, ulong B = 0, ulong C = 0, ulong D = 0, int E = 0, int Result = -1, ulong U = 0)
{
    /// <summary><see cref="OpKind.GuestRun"/>'s E bit for a guest in host memory (a kernel without guest_memfd).</summary>
    public const int GuestRunInHostMemory = 2;

    /// <summary><see cref="OpKind.GuestRun"/>'s E bit for a host-memory slot with KVM_MEM_LOG_DIRTY_PAGES (see <see cref="TinyGuestRun"/>).</summary>
    public const int GuestRunDirtyLog = 4;

    /// <summary><see cref="OpKind.GuestRun"/>'s E bit for far JMP/CALL/RET in a 64-bit program (<see cref="TinyGuestProgram"/>).</summary>
    public const int GuestRunFarTransfers = 8;

    /// <summary>
    /// <see cref="OpKind.GuestRun"/>'s E bit (with <c>--include-reported</c>) for draws on which a divergence is known:
    /// INT n / INT3 / SYSCALL back from ring 3 and IOPL 3 in the IRETQ image, which kvm_pvm does not run as upstream
    /// (HostDeviations.KvmPvmSyscallKeepsUserMode).
    /// </summary>
    public const int GuestRunWithReported = 16;

    public override string ToString()
    {
        var ci = CultureInfo.InvariantCulture;
        string h(int id) => id < 0 ? "-" : "h" + id.ToString(ci);
        return Kind switch
        {
            OpKind.OpenKvm => $"{h(Result)} = open(/dev/kvm)",
            OpKind.CreateVm => $"{h(Result)} = KVM_CREATE_VM({h(Target)}, type={A})",
            OpKind.CheckExtension => $"KVM_CHECK_EXTENSION({h(Target)}, cap={A})",
            OpKind.CreateGmem => $"{h(Result)} = KVM_CREATE_GUEST_MEMFD({h(Target)}, size=0x{A:X}, flags=0x{B:X})",
            OpKind.Fallocate => $"fallocate({h(Target)}, mode=0x{E:X}, offset=0x{A:X}, len=0x{B:X})",
            OpKind.SetRegion2 => $"KVM_SET_USER_MEMORY_REGION2({h(Target)}, slot={E}, flags=0x{D:X}, gpa=0x{A:X}, size=0x{B:X}, gmem={h(Other)}, offset=0x{C:X}{(U != 0 ? $", uaddr=0x{U:X}" : "")})",
            OpKind.Mmap => $"{h(Result)} = mmap({h(Target)}, len=0x{A:X}, offset=0x{B:X}, {(E == 0 ? "MAP_SHARED" : "MAP_PRIVATE")})",
            OpKind.Touch => C != 0 ? $"{h(Target)}[0x{A:X}] = 0x{B & 0xff:X2}" : $"read {h(Target)}[0x{A:X}]",
            OpKind.Munmap => $"munmap({h(Target)})",
            OpKind.Close => $"close({h(Target)})",
            OpKind.Fstat => $"fstat({h(Target)})",
            OpKind.FileIo => $"{FileIoNames[E]}({h(Target)}, 0x{A:X})",
            OpKind.SetAttributes => $"KVM_SET_MEMORY_ATTRIBUTES({h(Target)}, addr=0x{A:X}, size=0x{B:X}, attrs=0x{C:X}, flags=0x{D:X})",
            OpKind.SetAttributes2 => $"KVM_SET_MEMORY_ATTRIBUTES2({h(Target)}, offset=0x{A:X}, size=0x{B:X}, attrs=0x{C:X}, flags=0x{D:X})",
            OpKind.EnableCap => $"KVM_ENABLE_CAP({h(Target)}, cap={A}, flags=0x{B:X}, args[0]=0x{C:X})",
            OpKind.SetTssAddr => $"KVM_SET_TSS_ADDR({h(Target)}, 0x{A:X})",
            OpKind.CreateVcpu => $"{h(Result)} = KVM_CREATE_VCPU({h(Target)}, id={A})",
            OpKind.RegsRoundTrip => $"KVM_SET_REGS+KVM_GET_REGS({h(Target)}, seed={A}{(E != 0 ? ", with reported" : "")})",
            OpKind.SregsRoundTrip => $"KVM_GET_SREGS+SET_SREGS+GET_SREGS({h(Target)}, mutation={E}, seed={A})",
            OpKind.RunVcpu => $"KVM_RUN({h(Target)}, immediate_exit={E})",
            OpKind.PreFault => $"KVM_PRE_FAULT_MEMORY({h(Target)}, gpa=0x{A:X}, size=0x{B:X}, flags=0x{C:X})",
            OpKind.Madvise => $"madvise({h(Target)}+0x{A:X}, len=0x{B:X}, advice={E})",
            OpKind.GuestRun => $"guest run({h(Target)}, {((E & 1) == 0 ? "64-bit" : "real mode")}{((E & GuestRunInHostMemory) != 0 ? ", host memory" : "")}" +
                $"{((E & GuestRunDirtyLog) != 0 ? ", dirty log" : "")}{((E & GuestRunFarTransfers) != 0 ? ", far transfers" : "")}" +
                $"{((E & GuestRunWithReported) != 0 ? ", with reported" : "")}, program seed={A})",
            OpKind.GetDirtyLog => $"KVM_GET_DIRTY_LOG({h(Target)}, slot=0x{A:X}, bitmap={At(D, C)})",
            OpKind.ClearDirtyLog => $"KVM_CLEAR_DIRTY_LOG({h(Target)}, slot=0x{A:X}, first_page=0x{B:X}, num_pages=0x{(uint)E:X}, bitmap={At(D, U)} mask=0x{C:X})",
            OpKind.MsrsIo => $"{((E & 1) != 0 ? "KVM_SET_MSRS+KVM_GET_MSRS" : "KVM_GET_MSRS")}({h(Target)}, nmsrs={(uint)B}, {C} entries from seed={A}{((E & 2) != 0 ? ", with reported" : "")})",
            OpKind.CpuidRoundTrip => $"{((E & 1) != 0 ? "" : $"KVM_SET_CPUID2(nent={(uint)B}, {C} entries from seed={A})+")}KVM_GET_CPUID2({h(Target)}, nent={(uint)D})",
            OpKind.SystemX86List => $"{X86StateOps.SystemListNames[E]}({h(Target)}, n={(uint)B}{(E == 4 ? $", {C} entries from seed={A}" : "")})",
            OpKind.X86GuestRun => $"guest run({h(Target)}, CPUID/RDMSR/WRMSR, program seed={A}{((E & 2) != 0 ? ", with reported" : "")})",
            OpKind.VcpuStateRoundTrip => $"{((E & VcpuStateOps.CpuidFirst) != 0 ? $"KVM_SET_CPUID2(1 entry from seed={A})+" : "")}" +
                $"{((E & VcpuStateOps.GetOnly) != 0 ? "" : $"KVM_SET_{VcpuStateOps.SetName(E & 7)}(seed={A})+")}KVM_GET_{VcpuStateOps.Names[E & 7]}({h(Target)})",
            OpKind.GuestDebugSet => $"KVM_SET_GUEST_DEBUG(seed={A})+KVM_GET_VCPU_EVENTS+KVM_GET_DEBUGREGS+KVM_SET_GUEST_DEBUG(0)({h(Target)})",
            OpKind.GuestDebugRun => $"guest run({h(Target)}, KVM_SET_GUEST_DEBUG phases, program seed={A})",
            OpKind.Clock => E switch
            {
                ClockOps.Get => $"KVM_GET_CLOCK({h(Target)})",
                ClockOps.SetThenGet => $"KVM_SET_CLOCK({h(Target)}, clock={A}, flags=0x{B:X}, realtime mode {C & 3}{((C & ClockOps.DirtyPads) != 0 ? ", pads" : "")})+KVM_GET_CLOCK",
                _ => $"KVM_GET_CLOCK+KVM_SET_CLOCK({h(Target)}, bad pointer)",
            },
            OpKind.Mempolicy => MempolicyOps.Describe(this),
            OpKind.DeviceAttr => $"{(DeviceAttrOps.Request(E) switch { DeviceAttrOps.Has => "KVM_HAS_DEVICE_ATTR", DeviceAttrOps.Get => "KVM_GET_DEVICE_ATTR", _ => $"KVM_SET_DEVICE_ATTR(value=0x{U:X})" })}({h(Target)}, group={(uint)A}, attr={B}, flags=0x{(uint)C:X}, addr={(DirtyBitmapAt)D})",
            OpKind.InterruptQueue => InterruptOps.Describe(this),
            OpKind.IoEventFd => IoEventFdOps.Describe(this, h(Target)),
            OpKind.DeviceCtl => DeviceCtlOps.Describe(this, h(Target)),
            OpKind.Irqchip => IrqchipOps.Describe(this, h(Target)),
            OpKind.InterruptGuestRun => $"guest run({h(Target)}, KVM_INTERRUPT/KVM_NMI/KVM_X86_SET_MCE, program seed={A})",
            OpKind.TscKhz => $"{(E != 0 ? $"KVM_SET_TSC_KHZ(rate kind {A}, ppm {(long)B})+" : "")}KVM_GET_TSC_KHZ({h(Target)})",
            OpKind.DirtyRingRun => $"guest run({h(Target)}, dirty ring, seed={A})",
            OpKind.LevelEoiGuestRun => $"guest run({h(Target)}, IOAPIC interrupt and EOI, seed={A})",
            OpKind.IvtLdtGuestRun => $"guest run({h(Target)}, {((E & 1) == 0 ? "real mode through the IVT" : "LDT")}{((E & 2) != 0 ? ", with reported" : "")}, program seed={A})",
            OpKind.SignalMask => SignalMaskOps.Describe(this, h(Target)),
            OpKind.MsrFilter => MsrFilterOps.Describe(this, h(Target)),
            OpKind.MsrFilterGuestRun => $"guest run({h(Target)}, MSR filter and userspace MSR exits, seed={A})",
            OpKind.Coalesced => CoalescedOps.Describe(this, h(Target)),
            OpKind.CoalescedGuestRun => $"guest run({h(Target)}, coalesced MMIO/PIO zones{((E & 2) != 0 ? ", with reported" : "")}, seed={A})",
            OpKind.KvmClockMsrs => $"{((E & 1) != 0 ? "KVM_SET_MSRS+" : "")}KVM_GET_MSRS({h(Target)}, kvmclock MSRs from seed={A}){(Other >= 0 ? $"+KVM_GET_MSRS({h(Other)})" : "")}",
            _ => Kind.ToString(),
        };
    }

    private static string At(ulong at, ulong offset) =>
        (DirtyBitmapAt)at == DirtyBitmapAt.Scratch ? $"scratch+0x{offset:X}" : ((DirtyBitmapAt)at).ToString();

    internal static readonly string[] FileIoNames = ["read", "write", "pread", "pwrite", "lseek", "ftruncate"];
}
