// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp.Fuzzing;

/// <summary>
/// <see cref="OpKind.IvtLdtGuestRun"/> with E bit 0: the 64-bit tiny guest in host memory with 32 halting IDT gates
/// (<see cref="WriteIdt"/>) running <see cref="TinyGuestProgram.Ldt"/>. The GDT gets an LDT descriptor (16 bytes, type 2)
/// at <see cref="TinyGuestProgram.LdtSelector"/> for the LDT at <see cref="LdtGpa"/> and an absent one at
/// <see cref="TinyGuestProgram.AbsentLdtSelector"/>; the LDT holds an all-zero entry, a data segment not yet accessed, a
/// readable 64-bit code segment, an absent data segment, an execute-only code segment and a DPL-3 data segment.
/// Compared: the exits (a fault halts in its handler: RIP names the vector), the registers, LDTR and the data segment
/// registers as KVM_GET_SREGS reports them, the frame of a fault (error code), the LDT's bytes (accessed bits) and the
/// data page (SLDT and MOV from a segment register to memory).
/// </summary>
internal static partial class TinyGuestRun
{
    private const ulong LdtGpa = 0x8000, LdtLimit = 6 * 8 - 1;

    public static string RunLdt(IKernel kernel, KernelFd system, ulong seed, bool withReported)
    {
        long vmRc = kernel.Ioctl(system, KvmIoctls.KVM_CREATE_VM, 0UL);
        if (vmRc < 0) return "create vm " + Errno(vmRc);
        using var vm = kernel.Adopt((int)vmRc);
        byte[] code = TinyGuestProgram.Ldt(seed, CodeGpa, withReported);
        if (StartLongModeGuest(kernel, system, vm, code, m =>
        {
            WriteIdt(m);
            WriteLdtTables(m);
        }, out var started) is string startError) return startError;
        using var guest = started!;
        var (memory, vcpu, run) = guest;
        string? setup = EnterLongMode(kernel, vcpu, seed, IdtGpa, 32 * 16 - 1);
        if (setup is not null) return setup;
        var s = new kvm_sregs();
        kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_SREGS, Bytes(ref s));
        s.gdt.limit = TinyGuestProgram.LdtGdtLimit;
        long rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_SET_SREGS, Bytes(ref s));
        if (rc < 0) return "set sregs " + Errno(rc);

        var text = new StringBuilder();
        RunExits(kernel, vcpu, run, text);
        if (AppendRegs(kernel, vcpu, text, out var r) && r.rip >= HandlersGpa && r.rip < HandlersGpa + 32 * HandlerStride && r.rsp >= StackTop - 0x100 && r.rsp <= StackTop - 0x30)
            text.Append(CultureInfo.InvariantCulture, $" vector {(r.rip - HandlersGpa) / HandlerStride} frame {Convert.ToHexString(memory.GetSpan(r.rsp, 0x30))}");
        kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_SREGS, Bytes(ref s));
        text.Append(CultureInfo.InvariantCulture, $" | ldt {s.ldt.selector:X} base 0x{s.ldt.@base:X} limit 0x{s.ldt.limit:X} type {s.ldt.type} p {s.ldt.present} unusable {s.ldt.unusable}");
        AppendDataSegment(text, "es", s.es);
        AppendDataSegment(text, "ds", s.ds);
        AppendDataSegment(text, "fs", s.fs);
        AppendDataSegment(text, "gs", s.gs);
        text.Append(CultureInfo.InvariantCulture, $" | ldt bytes {Convert.ToHexString(memory.GetSpan(LdtGpa, (int)LdtLimit + 1))} data=0x{Fnv(memory.GetSpan(DataGpa, 0x1000)):X16}");
        return text.ToString();
    }

    /// <summary>A data segment register as KVM_GET_SREGS reports it (base of FS/GS too: the LDT's bases are 0).</summary>
    private static void AppendDataSegment(StringBuilder text, string name, kvm_segment s) =>
        text.Append(CultureInfo.InvariantCulture, $" {name} {s.selector:X} type {s.type} s {s.s} dpl {s.dpl} p {s.present} l {s.l} base 0x{s.@base:X} limit 0x{s.limit:X}");

    /// <summary>The GDT's two LDT descriptors (16 bytes each) and the LDT's six entries.</summary>
    private static void WriteLdtTables(MappedRegion memory)
    {
        var gdt = MemoryMarshal.Cast<byte, ulong>(memory.GetSpan(GdtGpa, TinyGuestProgram.LdtGdtLimit + 1));
        gdt[TinyGuestProgram.LdtSelector / 8] = Descriptor(LdtGpa, (uint)LdtLimit, type: 2, s: false, dpl: 0, present: true, flags: 0);
        gdt[TinyGuestProgram.LdtSelector / 8 + 1] = 0;
        gdt[TinyGuestProgram.AbsentLdtSelector / 8] = Descriptor(LdtGpa, (uint)LdtLimit, type: 2, s: false, dpl: 0, present: false, flags: 0);
        gdt[TinyGuestProgram.AbsentLdtSelector / 8 + 1] = 0;
        var ldt = MemoryMarshal.Cast<byte, ulong>(memory.GetSpan(LdtGpa, (int)LdtLimit + 1));
        ldt[0] = 0;
        ldt[1] = Descriptor(0, 0xFFFFF, type: 2, s: true, dpl: 0, present: true, flags: 0xC); // data, read/write, not accessed
        ldt[2] = Descriptor(0, 0xFFFFF, type: 0xA, s: true, dpl: 0, present: true, flags: 0xA); // 64-bit code, readable
        ldt[3] = Descriptor(0, 0xFFFFF, type: 2, s: true, dpl: 0, present: false, flags: 0xC); // absent data
        ldt[4] = Descriptor(0, 0xFFFFF, type: 8, s: true, dpl: 0, present: true, flags: 0xA); // execute-only code
        ldt[5] = Descriptor(0, 0xFFFFF, type: 2, s: true, dpl: 3, present: true, flags: 0xC); // data, DPL 3
    }

    /// <summary>An 8-byte segment descriptor (SDM Vol. 3A 3.4.5); <paramref name="flags"/> is G, D/B, L, AVL (bits 55–52).</summary>
    private static ulong Descriptor(ulong @base, uint limit, int type, bool s, int dpl, bool present, int flags) =>
        (limit & 0xFFFFUL) | ((@base & 0xFF_FFFF) << 16) | ((ulong)type << 40) | ((s ? 1UL : 0) << 44) | ((ulong)dpl << 45) |
        ((present ? 1UL : 0) << 47) | ((ulong)(limit >> 16 & 0xF) << 48) | ((ulong)flags << 52) | ((@base >> 24 & 0xFF) << 56);
}
