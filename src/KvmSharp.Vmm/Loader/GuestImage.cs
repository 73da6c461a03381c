// SPDX-License-Identifier: MIT
using System.Collections.Frozen;
using KvmSharp.Vmm.Arch.X86_64;

namespace KvmSharp.Vmm.Loader;

/// <summary>The format a <see cref="GuestImage"/> was made from.</summary>
public enum GuestImageKind
{
    /// <summary>A static ELF64 x86-64 or AArch64 ET_EXEC: PT_LOAD segments at their addresses, exports from .symtab.</summary>
    Elf,
    /// <summary>Raw bytes loaded at <see cref="Layout.ImageBase"/>; entry and exports are offsets the caller names.</summary>
    Flat,
}

/// <summary>
/// A parsed, validated guest program: what to copy where, where to start, and the functions a host may call by name
/// (<see cref="Exports"/>). Parsing checks the image against the fixed layout; <see cref="CheckFits"/> checks it
/// against a memory size. Loading writes into guest memory only through checked spans.
/// </summary>
public sealed class GuestImage
{
    internal GuestImage(GuestImageKind kind, IReadOnlyList<ImageSegment> segments, ulong entry, IReadOnlyDictionary<string, ulong> exports,
        GuestArchitecture? architecture = null, BranchProtection branchProtection = BranchProtection.None)
    {
        Kind = kind;
        Architecture = architecture;
        BranchProtection = branchProtection;
        Segments = segments;
        Entry = entry;
        Exports = exports.ToFrozenDictionary(StringComparer.Ordinal);
    }

    /// <summary>Whether the image came from an ELF file or flat bytes.</summary>
    public GuestImageKind Kind { get; }

    /// <summary>
    /// The instruction set of an ELF image (e_machine: EM_X86_64 or EM_AARCH64); null for a flat image, whose bytes
    /// say nothing about it (the micro-VM runs them as its own architecture's code).
    /// </summary>
    public GuestArchitecture? Architecture { get; }

    /// <summary>
    /// The AArch64 branch-protection features an arm64 ELF image was built for (its GNU_PROPERTY_AARCH64_FEATURE_1_AND
    /// bits; <see cref="BranchProtection.None"/> for x86-64 and flat images). With <see cref="BranchProtection.Bti"/> an
    /// arm64 micro-VM on a CPU with FEAT_BTI maps the image's pages guarded (<see cref="MicroVm.BranchTargetsGuarded"/>).
    /// </summary>
    public BranchProtection BranchProtection { get; }

    /// <summary>
    /// What loading copies into guest memory: the PT_LOAD segments in file order, or the one flat segment.
    /// </summary>
    public IReadOnlyList<ImageSegment> Segments { get; }

    /// <summary>Guest address of the entry point (ELF e_entry, or the flat image's entry offset + ImageBase).</summary>
    public ulong Entry { get; }

    /// <summary>Callable functions by name (ELF: global/weak STT_FUNC symbols).</summary>
    public FrozenDictionary<string, ulong> Exports { get; }

    private byte[]? _digest;

    /// <summary>
    /// SHA-256 of the image's canonical encoding (Snapshots/ImageEncoding): equal for equal images however they were
    /// built or read, so a snapshot read from a file fits a micro-VM created from the original image object.
    /// </summary>
    internal ReadOnlySpan<byte> Digest => _digest ??= Snapshots.ImageEncoding.Digest(this);

    /// <summary>One past the highest byte any segment occupies.</summary>
    public ulong End => Segments.Max(s => s.End);

    /// <summary>ELF when the bytes start with the ELF magic, else a flat image entered at its first byte.</summary>
    public static GuestImage Load(ReadOnlyMemory<byte> bytes) =>
        ElfParser.HasMagic(bytes.Span) ? FromElf(bytes) : FromFlat(bytes);

    /// <summary>
    /// Reads <paramref name="path"/> and loads it as <see cref="Load"/> does: ELF when it has the magic, else flat.
    /// </summary>
    /// <exception cref="IOException">The file cannot be read.</exception>
    /// <exception cref="GuestImageException">The image is invalid or does not fit the layout.</exception>
    public static GuestImage FromFile(string path) => Load(File.ReadAllBytes(path));

    /// <summary>
    /// Parses a static ELF64 little-endian x86-64 or AArch64 ET_EXEC: PT_LOAD segments, e_entry, and global/weak
    /// STT_FUNC symbols as exports; e_machine becomes <see cref="Architecture"/>.
    /// </summary>
    /// <exception cref="GuestImageException">Not such a file, or it does not fit the layout;
    /// <see cref="GuestImageException.Error"/> says why.</exception>
    public static GuestImage FromElf(ReadOnlyMemory<byte> bytes) => ElfParser.Parse(bytes);

    /// <summary>
    /// A flat binary loaded at <see cref="Layout.ImageBase"/>, entered at <paramref name="entryOffset"/>, with
    /// <paramref name="exports"/> as name → offset from the start of the image.
    /// </summary>
    public static GuestImage FromFlat(ReadOnlyMemory<byte> bytes, ulong entryOffset = 0, IReadOnlyDictionary<string, ulong>? exports = null)
    {
        if (bytes.IsEmpty) throw new GuestImageException(GuestImageError.BadMagic, "the flat image is empty");
        ulong length = (ulong)bytes.Length;
        if (length > Layout.MaxMemorySize - Layout.ImageBase)
            throw new GuestImageException(GuestImageError.OutsideMemory, $"the flat image is 0x{length:X} bytes; at most 0x{Layout.MaxMemorySize - Layout.ImageBase:X} fit above 0x{Layout.ImageBase:X}");
        if (entryOffset >= length)
            throw new GuestImageException(GuestImageError.BadEntry, $"entry offset 0x{entryOffset:X} is outside the 0x{length:X}-byte flat image");
        var named = new Dictionary<string, ulong>(StringComparer.Ordinal);
        foreach (var (name, offset) in exports ?? new Dictionary<string, ulong>())
        {
            if (offset >= length)
                throw new GuestImageException(GuestImageError.BadEntry, $"export '{name}' at offset 0x{offset:X} is outside the 0x{length:X}-byte flat image");
            named[name] = Layout.ImageBase + offset;
        }
        return new GuestImage(GuestImageKind.Flat, [new ImageSegment(Layout.ImageBase, bytes, length)], Layout.ImageBase + entryOffset, named);
    }

    /// <summary>
    /// Throws when the image is an ELF of another instruction set than <paramref name="vm"/>'s (a micro-VM runs only
    /// its kernel's: GUEST-ABI.md, "arm64 micro-VMs"). A flat image fits either.
    /// </summary>
    /// <exception cref="GuestImageException">With <see cref="GuestImageError.WrongArchitecture"/>.</exception>
    public void CheckArchitecture(GuestArchitecture vm)
    {
        if (Architecture is GuestArchitecture image && image != vm)
            throw new GuestImageException(GuestImageError.WrongArchitecture,
                $"the image is an {ElfMachineName(image)} ELF ({image}), but this micro-VM is {vm}: build the guest for {ElfMachineName(vm)}");
    }

    private static string ElfMachineName(GuestArchitecture architecture) =>
        architecture == GuestArchitecture.Arm64 ? "EM_AARCH64" : "EM_X86_64";

    /// <summary>Throws when a segment does not fit in guest memory of <paramref name="memorySize"/> bytes.</summary>
    public void CheckFits(ulong memorySize)
    {
        foreach (var segment in Segments)
        {
            if (segment.Address < Layout.ImageBase || segment.End > memorySize)
                throw new GuestImageException(GuestImageError.OutsideMemory,
                    $"segment [0x{segment.Address:X}, 0x{segment.End:X}) is outside the image area [0x{Layout.ImageBase:X}, 0x{memorySize:X}) of this micro-VM");
        }
    }

    /// <summary>Copies the segments into guest memory and zeroes their BSS parts.</summary>
    public void WriteTo(GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        CheckFits(memory.Size);
        foreach (var segment in Segments)
        {
            memory.Write(segment.Address, segment.Data.Span);
            ulong bss = segment.MemorySize - (ulong)segment.Data.Length;
            // Fresh or discarded pages are already zero; a reused VM may hold old data there.
            if (bss > 0) memory.Fill(segment.Address + (ulong)segment.Data.Length, bss, 0);
        }
    }

    /// <summary>
    /// Loads the image into <paramref name="memory"/> that is fresh in the image area (just created, or discarded):
    /// with pwrite(2) on the guest_memfd when it takes write(2) (<see cref="GuestMemory.PopulatesByWrite"/>) and
    /// <paramref name="preferWrite"/> is set — each segment's whole pages straight from its data, a partial first or last
    /// page through a zero-padded page (the kernel writes whole pages only; a fresh page's other bytes are zero anyway,
    /// and so is the rest of the segment's .bss) — otherwise, or when two segments share a page, or while a lazy restore
    /// is in progress, through the mapping (<see cref="WriteTo"/>).
    /// </summary>
    /// <returns>How the image was loaded.</returns>
    internal ImageLoadMethod WriteToFresh(GuestMemory memory, bool preferWrite = true)
    {
        ArgumentNullException.ThrowIfNull(memory);
        if (!preferWrite || !memory.PopulatesByWrite || memory.IsPopulatingLazily || SharePages())
        {
            WriteTo(memory);
            return ImageLoadMethod.MappingCopy;
        }
        CheckFits(memory.Size);
        ulong ps = Layout.PageSize;
        foreach (var segment in Segments)
        {
            ReadOnlySpan<byte> data = segment.Data.Span;
            ulong at = segment.Address;
            if (at % ps != 0 && data.Length > 0)
            {
                // The head: from the segment's start to its page's end (or the data's end).
                int head = (int)Math.Min(ps - (at % ps), (ulong)data.Length);
                byte[] page = new byte[ps];
                data[..head].CopyTo(page.AsSpan((int)(at % ps)));
                memory.WriteWholePages(at - (at % ps), page);
                data = data[head..];
                at += (ulong)head;
            }
            int whole = (int)((ulong)data.Length / ps * ps);
            if (whole > 0) memory.WriteWholePages(at, data[..whole]);
            if (whole < data.Length)
            {
                byte[] page = new byte[ps];
                data[whole..].CopyTo(page);
                memory.WriteWholePages(at + (ulong)whole, page);
            }
        }
        return ImageLoadMethod.GuestMemfdWrite;
    }

    /// <summary>True when two segments' data touch the same page (ELF segments packed by a linker): written whole, the later page would wipe the earlier's bytes.</summary>
    private bool SharePages()
    {
        ulong ps = Layout.PageSize;
        ulong previousLast = 0;
        bool any = false;
        foreach (var segment in Segments.OrderBy(s => s.Address))
        {
            if (segment.Data.Length == 0) continue;
            ulong first = segment.Address / ps, last = (segment.Address + (ulong)segment.Data.Length - 1) / ps;
            if (any && first <= previousLast) return true;
            previousLast = last;
            any = true;
        }
        return false;
    }

    /// <summary>The address of export <paramref name="name"/>.</summary>
    public ulong Resolve(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (Exports.TryGetValue(name, out ulong address)) return address;
        string known = Exports.Count == 0 ? "none" : string.Join(", ", Exports.Keys.Order(StringComparer.Ordinal));
        throw new MicroVmException($"the image exports no function '{name}' (exports: {known})");
    }
}
