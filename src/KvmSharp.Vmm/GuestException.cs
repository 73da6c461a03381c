// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using KvmSharp.Vmm.GuestAbi;

namespace KvmSharp.Vmm;

/// <summary>
/// A CPU exception the guest raised (#DE, #UD, #PF, #GP …), as the VMM's exception handler saw it: a value in
/// <see cref="CallResult.Exception"/>, never thrown. <see cref="ToString"/> is the call's Detail, e.g.
/// "page fault (#PF) at rip 0x100123: cr2 0x400000, error code 0x2 (write, not present)".
/// </summary>
public sealed record GuestException
{
    /// <summary>The guest's instruction set: <see cref="GuestArchitecture.Arm64"/> reads the fields as <see cref="Arch.Arm64.Arm64Exceptions"/> says.</summary>
    public GuestArchitecture Architecture { get; init; }

    /// <summary>The vector, 0-31 (arm64: the vector-table entry, 0-15).</summary>
    public required int Vector { get; init; }

    /// <summary>The error code the CPU pushed; null for the vectors that push none (<see cref="Arch.X86_64.Idt.HasErrorCode"/>).</summary>
    public ulong? ErrorCode { get; init; }

    /// <summary>
    /// The RIP of the interrupt frame: the faulting instruction for a fault (#DE, #UD, #PF, #GP …), the instruction
    /// after it for a trap (#BP, #OF, #DB after a single step).
    /// </summary>
    public required ulong Rip { get; init; }

    /// <summary>The CS selector of the interrupted code (from the interrupt frame).</summary>
    public ushort Cs { get; init; }

    /// <summary>RFLAGS of the interrupted code (from the interrupt frame).</summary>
    public ulong Rflags { get; init; }

    /// <summary>The guest's RSP when the exception happened (handlers run on their own stack).</summary>
    public ulong Rsp { get; init; }

    /// <summary>The SS selector of the interrupted code (from the interrupt frame).</summary>
    public ushort Ss { get; init; }

    /// <summary>The linear address a #PF was raised for (CR2); null for every other vector.</summary>
    public ulong? Cr2 { get; init; }

    /// <summary>"#PF", or "vector 15" for a vector without a mnemonic.</summary>
    public string Mnemonic => Architecture == GuestArchitecture.Arm64 ? Arch.Arm64.Arm64Exceptions.Mnemonic(this) : Vector is >= 0 and < Idt32 && Names[Vector].Mnemonic is string m
        ? m : string.Create(CultureInfo.InvariantCulture, $"vector {Vector}");

    /// <summary>"page fault"; "reserved" for the vectors Intel reserves.</summary>
    public string Name => Architecture == GuestArchitecture.Arm64 ? Arch.Arm64.Arm64Exceptions.Name(this) : Vector is >= 0 and < Idt32 ? Names[Vector].Name : "not an exception vector";

    private const int Idt32 = 32;
    private const int PageFault = 14;

    private static readonly (string? Mnemonic, string Name)[] Names =
    [
        ("#DE", "divide error"), ("#DB", "debug"), ("NMI", "non-maskable interrupt"), ("#BP", "breakpoint"),
        ("#OF", "overflow"), ("#BR", "bound range exceeded"), ("#UD", "invalid opcode"), ("#NM", "device not available"),
        ("#DF", "double fault"), (null, "coprocessor segment overrun"), ("#TS", "invalid TSS"), ("#NP", "segment not present"),
        ("#SS", "stack-segment fault"), ("#GP", "general protection"), ("#PF", "page fault"), (null, "reserved"),
        ("#MF", "x87 floating-point error"), ("#AC", "alignment check"), ("#MC", "machine check"), ("#XM", "SIMD floating-point exception"),
        ("#VE", "virtualization exception"), ("#CP", "control protection"), (null, "reserved"), (null, "reserved"),
        (null, "reserved"), (null, "reserved"), (null, "reserved"), (null, "reserved"),
        ("#HV", "hypervisor injection"), ("#VC", "VMM communication"), ("#SX", "security exception"), (null, "reserved"),
    ];

    /// <summary>Reads the exception block (<see cref="ExceptionBlock"/>) the guest-side handler filled.</summary>
    public static GuestException FromBlock(ReadOnlySpan<byte> block)
    {
        ulong raw = Field(block, ExceptionBlock.Vector);
        // The block is guest memory: a guest may OUT to the port itself with anything in it. Keep the report well formed.
        int vector = (int)Math.Min(raw, int.MaxValue);
        bool known = raw < Idt32;
        return new GuestException
        {
            Vector = vector,
            ErrorCode = known && Arch.X86_64.Idt.HasErrorCode(vector) ? Field(block, ExceptionBlock.ErrorCode) : null,
            Rip = Field(block, ExceptionBlock.Rip),
            Cs = (ushort)Field(block, ExceptionBlock.Cs),
            Rflags = Field(block, ExceptionBlock.Rflags),
            Rsp = Field(block, ExceptionBlock.Rsp),
            Ss = (ushort)Field(block, ExceptionBlock.Ss),
            Cr2 = vector == PageFault ? Field(block, ExceptionBlock.Cr2) : null,
        };
    }

    private static ulong Field(ReadOnlySpan<byte> block, ulong offset) => BinaryPrimitives.ReadUInt64LittleEndian(block[(int)offset..]);

    /// <summary>"divide error (#DE) at rip 0x100123"; with the values of a #PF or an error code after a colon.</summary>
    public override string ToString()
    {
        if (Architecture == GuestArchitecture.Arm64) return Arch.Arm64.Arm64Exceptions.Describe(this);
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{Name} ({Mnemonic}) at rip 0x{Rip:X}");
        if (Cr2 is ulong cr2) text.Append(CultureInfo.InvariantCulture, $": cr2 0x{cr2:X}");
        if (ErrorCode is ulong code)
        {
            text.Append(Cr2 is null ? ": " : ", ").Append(CultureInfo.InvariantCulture, $"error code 0x{code:X}");
            string? meaning = Vector == PageFault ? PageFaultCode(code) : SelectorCode(Vector, code);
            if (meaning is not null) text.Append(" (").Append(meaning).Append(')');
        }
        return text.ToString();
    }

    /// <summary>The #PF error code's bits (Intel SDM Vol. 3A 4.7, Figure 4-12).</summary>
    public static string PageFaultCode(ulong code)
    {
        var parts = new List<string>(4)
        {
            (code & (1 << 4)) != 0 ? "instruction fetch" : (code & (1 << 1)) != 0 ? "write" : "read",
        };
        if ((code & (1 << 2)) != 0) parts.Add("user");
        parts.Add((code & 1) != 0 ? "protection violation" : "not present");
        if ((code & (1 << 3)) != 0) parts.Add("reserved bit set");
        if ((code & (1 << 5)) != 0) parts.Add("protection key");
        if ((code & (1 << 6)) != 0) parts.Add("shadow stack");
        if ((code & (1 << 15)) != 0) parts.Add("SGX");
        return string.Join(", ", parts);
    }

    /// <summary>
    /// A selector error code of #TS, #NP, #SS or #GP (SDM Vol. 3A 6.13, Figure 6-6): which descriptor, and EXT; null
    /// for 0 (no selector) and for vectors whose code is not a selector.
    /// </summary>
    public static string? SelectorCode(int vector, ulong code)
    {
        if (vector is not (10 or 11 or 12 or 13) || code == 0) return null;
        ulong index = (code >> 3) & 0x1FFF;
        string where = (code & 2) != 0
            ? string.Create(CultureInfo.InvariantCulture, $"IDT vector {index}")
            : string.Create(CultureInfo.InvariantCulture, $"{((code & 4) != 0 ? "LDT" : "GDT")} selector 0x{code & 0xFFF8:X}");
        return (code & 1) != 0 ? where + ", external" : where;
    }
}
