// SPDX-License-Identifier: MIT
using static KvmSharp.Kernel.Mempolicy;

namespace KvmSharp.Fuzzing;

/// <summary>
/// What <see cref="OpKind.Mempolicy"/> draws (E: the call) and how U packs its small arguments: the first page
/// (bits 0–1), the page count (bits 2–4), the flag choice (bits 5–7), the pointer count (bits 8–12), and extra flag
/// bits (above 32). The pages are <see cref="KernelSession"/>'s own anonymous pages (mapped through the kernel under
/// test); user pointers go to the session's scratch pages, NULL or the kernel half.
/// </summary>
public static class MempolicyOps
{
    /// <summary>E: mbind(2).</summary>
    public const int Mbind = 0;

    /// <summary>E: get_mempolicy(2) of a page (flags from U: mostly MPOL_F_ADDR).</summary>
    public const int GetPolicy = 1;

    /// <summary>E: move_pages(2) in query mode.</summary>
    public const int MovePages = 2;

    /// <summary>E: a page written (U bit 13) or read, so that pages exist, or the zero page does.</summary>
    public const int Touch = 3;

    /// <summary>The session's anonymous pages.</summary>
    public const int Pages = 4;

    public static int FirstPage(ulong u) => (int)(u & 3);

    /// <summary>
    /// 0 … the pages left from the first: never past the session's pages, where the real kernel finds whatever else
    /// this process mapped there and the emulator a hole (it knows only the mappings made through it).
    /// </summary>
    public static int PageCount(ulong u) => Math.Min((int)((u >> 2) & 7), Pages - FirstPage(u));

    public static int PointerCount(ulong u) => (int)((u >> 8) % 21);

    public static bool Write(ulong u) => (u & (1UL << 13)) != 0;

    /// <summary>mbind's flags: 0, STRICT, MOVE, MOVE_ALL, LAZY (EINVAL) or bits beyond (never MOVE|STRICT: whether a
    /// migration fails is the machine's business).</summary>
    public static uint MbindFlags(ulong u) => ((u >> 5) & 7) switch
    {
        0 or 1 or 2 => 0,
        3 => MPOL_MF_STRICT,
        4 => MPOL_MF_MOVE,
        5 => MPOL_MF_MOVE_ALL,
        6 => MPOL_MF_LAZY,
        _ => (uint)(u >> 32) | 0x80,
    };

    /// <summary>get_mempolicy's flags: mostly MPOL_F_ADDR, else NODE|ADDR, MEMS_ALLOWED, none, or anything.</summary>
    public static ulong GetFlags(ulong u) => ((u >> 5) & 7) switch
    {
        0 or 1 or 2 or 3 => MPOL_F_ADDR,
        4 => MPOL_F_NODE | MPOL_F_ADDR,
        5 => MPOL_F_MEMS_ALLOWED,
        6 => 0,
        _ => u >> 32,
    };

    public static string Describe(FuzzOp op) => op.E switch
    {
        Mbind => $"mbind(page {FirstPage(op.U)}, {PageCount(op.U)} pages, mode=0x{(uint)op.A:X}, mask=0x{op.B:X}@{(DirtyBitmapAt)op.D}, maxnode={op.C}, flags=0x{MbindFlags(op.U):X})",
        GetPolicy => $"get_mempolicy(page {FirstPage(op.U)}, mask@{(DirtyBitmapAt)op.D}, maxnode={op.C}, flags=0x{GetFlags(op.U):X})",
        MovePages => $"move_pages({PointerCount(op.U)} pointers from page {FirstPage(op.U)}, status@{(DirtyBitmapAt)op.D}, flags={(int)op.A})",
        _ => $"{(Write(op.U) ? "write" : "read")} page {FirstPage(op.U)}",
    };
}
