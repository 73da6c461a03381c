// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.X86_64;

namespace KvmSharp.Vmm.GuestAbi;

/// <summary>
/// The call region header at <see cref="Layout.CallRegion"/>: little-endian fields the host writes before it enters a
/// guest function and reads after the function returns (GUEST-ABI.md, "Call region").
/// </summary>
public static class CallRegion
{
    /// <summary>"KVMS" little-endian: lets a guest check it runs under this ABI.</summary>
    public const uint MagicValue = 0x534D_564B;
    /// <summary>
    /// 2 adds the host-call block and port (<see cref="HostCallBlock"/>); 3 adds <see cref="Features"/>; 4 adds the
    /// VMM's exception handlers, the exception block and port (<see cref="ExceptionBlock"/>) and ends the call data
    /// area at 0xFC000; 5 adds the console-write port (<see cref="Ports.ConsoleWrite"/>) with <see cref="ConsolePtr"/>
    /// and <see cref="ConsoleLen"/>, and <see cref="MemorySize"/>. Every field of an earlier version is unchanged.
    /// </summary>
    public const uint VersionValue = 5;
    /// <summary>The most arguments a call takes: the six SysV integer argument registers.</summary>
    public const int MaxArgs = 6;

    // Field offsets from Layout.CallRegion.
    /// <summary>Offset of magic (u32, <see cref="MagicValue"/>).</summary>
    public const ulong Magic = 0x00;         // u32
    /// <summary>Offset of version (u32, <see cref="VersionValue"/>).</summary>
    public const ulong Version = 0x04;       // u32
    /// <summary>Offset of entry (u64): the guest address of the called function.</summary>
    public const ulong Entry = 0x08;         // u64: the function's address
    /// <summary>Offset of arg_count (u64): how many of <see cref="Args"/> the call passes.</summary>
    public const ulong ArgCount = 0x10;      // u64
    /// <summary>Offset of args (u64[6]); the same values are in RDI, RSI, RDX, RCX, R8, R9.</summary>
    public const ulong Args = 0x18;          // u64[6], also in RDI, RSI, RDX, RCX, R8, R9
    /// <summary>
    /// Offset of input_ptr (u64): guest address of the input bytes in the call data area; 0 when there are none.
    /// </summary>
    public const ulong InputPtr = 0x48;      // u64: start of the input bytes (in the call data area), 0 when none
    /// <summary>Offset of input_len (u64): the input's length in bytes.</summary>
    public const ulong InputLen = 0x50;      // u64
    /// <summary>Offset of result (u64): RAX at the function's return, stored by the return trampoline.</summary>
    public const ulong Result = 0x58;        // u64: written by the return trampoline from RAX
    /// <summary>
    /// Offset of output_ptr (u64), set by the guest: guest address of output bytes to hand back
    /// (<see cref="CallResult.Output"/>).
    /// </summary>
    public const ulong OutputPtr = 0x60;     // u64: set by the guest: output bytes to hand back (in the call data area)
    /// <summary>Offset of output_len (u64), set by the guest: the output's length in bytes.</summary>
    public const ulong OutputLen = 0x68;     // u64
    /// <summary>
    /// Offset of features (u64, version 3): <see cref="FeaturePrivateMemory"/> …, written by the host before every
    /// call.
    /// </summary>
    public const ulong Features = 0x70;      // u64: FeaturePrivateMemory … (version 3), written by the host every call
    /// <summary>
    /// Offset of console_ptr (u64, version 5), set by the guest before an OUT to <see cref="Ports.ConsoleWrite"/>: the
    /// guest address of the bytes to print.
    /// </summary>
    public const ulong ConsolePtr = 0x78;    // u64: set by the guest: bytes to print (version 5)
    /// <summary>
    /// Offset of console_len (u64, version 5): set by the guest to the number of bytes to print; the host sets it to
    /// the number it printed (all of them, or 0 when the range is not readable by the host).
    /// </summary>
    public const ulong ConsoleLen = 0x80;    // u64: in: bytes to print; out: bytes printed
    /// <summary>
    /// Offset of memory_size (u64, version 5), written by the host before every call: guest memory's size in bytes,
    /// so a guest knows where its memory ends (the heap of kvmsharp_guest.h's allocator runs from the image's end to it).
    /// </summary>
    public const ulong MemorySize = 0x88;    // u64: guest memory's size (version 5), written by the host every call
    /// <summary>The header's size in bytes (0x90).</summary>
    public const int HeaderSize = 0x90;

    /// <summary>
    /// Features bit 0: the VM has private memory and the host serves KVM_HC_MAP_GPA_RANGE. Without it a VMCALL may
    /// never return (this host's kvm_pvm loops on it), so a guest checks the bit first.
    /// </summary>
    public const ulong FeaturePrivateMemory = 1UL << 0;

    /// <summary>
    /// Features bit 1: the VM is an SEV-SNP micro-VM. With <see cref="FeaturePrivateMemory"/> it converts pages by a
    /// <c>call</c> to <see cref="Arch.X86_64.Layout.SnpMapGpaRange"/> (the runtime's GHCB page-state change), not with
    /// VMCALL (which is #UD in an SNP guest).
    /// </summary>
    public const ulong FeatureSnp = 1UL << 1;

    /// <summary>
    /// Features bit 2 (version 5): the host prints a whole buffer per OUT to <see cref="Ports.ConsoleWrite"/>. Offered
    /// in every micro-VM but SEV-SNP ones (whose #VC handler batches string I/O through the GHCB instead); in a TDX
    /// micro-VM, whose memory is private, together with <see cref="FeatureConsoleBuffer"/>.
    /// </summary>
    public const ulong FeatureConsoleWrite = 1UL << 2;

    /// <summary>
    /// Features bit 3 (version 5, TDX micro-VMs): the guest's memory is private, and the console-write port reads shared
    /// pages only, so the guest copies its bytes into the shared console buffer (<see cref="ConsoleBuffer"/>, at most
    /// <see cref="ConsoleBufferSize"/> a write) and points console_ptr there — a TD guest's bounce buffer, as Linux's
    /// swiotlb is for a TD's DMA (kernel/dma/swiotlb.c).
    /// </summary>
    public const ulong FeatureConsoleBuffer = 1UL << 3;

    /// <summary>
    /// The console buffer (guest address, version 5): the last 2 KiB of the call region's page, which the host never
    /// writes and which is shared wherever the call region is (a TD maps it with the shared bit). Guest memory like any
    /// other outside a TD, where nothing needs it.
    /// </summary>
    public const ulong ConsoleBuffer = Layout.CallRegion + 0x800;

    /// <summary>The console buffer's size in bytes: the longest write a TD guest prints in one exit.</summary>
    public const ulong ConsoleBufferSize = 0x800;

    /// <summary>
    /// The guest-physical address of header field <paramref name="field"/> (one of this class's offset constants).
    /// </summary>
    public static ulong Address(ulong field) => Layout.CallRegion + field;
}
