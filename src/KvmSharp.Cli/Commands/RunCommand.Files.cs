// SPDX-License-Identifier: MIT
using KvmSharp.Vmm;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Snapshots;

namespace KvmSharp.Cli.Commands;

/// <summary>
/// The files a run reads and writes: the guest image (ELF64 or flat binary), a snapshot file recognised by its magic,
/// and the snapshot --save-snapshot writes (beside the name, then renamed, so a failed write leaves nothing half done).
/// </summary>
public static partial class RunCommand
{
    /// <summary>The snapshot in file <paramref name="path"/>, or null when the file is not one (by its magic).</summary>
    private static MicroVmSnapshot? LoadSnapshot(string path)
    {
        if (!File.Exists(path)) return null;
        using var file = File.OpenRead(path);
        Span<byte> header = stackalloc byte[8];
        if (file.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) < header.Length || !MicroVmSnapshot.HasSnapshotMagic(header))
            return null;
        file.Position = 0;
        try
        {
            return MicroVmSnapshot.ReadFrom(file);
        }
        catch (MicroVmSnapshotFormatException e)
        {
            throw new UsageException($"{path}: {e.Message}");
        }
    }

    /// <summary>Writes the micro-VM's snapshot to <paramref name="path"/>; a failed write is an UnavailableException naming the file.</summary>
    private static void SaveSnapshot(MicroVm vm, string path)
    {
        MicroVmSnapshot snapshot = vm.Snapshot();
        try
        {
            // Written beside, then renamed: a failed write never leaves half a snapshot under the name.
            string temporary = path + ".tmp";
            using (var file = File.Create(temporary)) snapshot.WriteTo(file);
            File.Move(temporary, path, overwrite: true);
        }
        catch (IOException e)
        {
            throw new UnavailableException($"--save-snapshot {path}: {e.Message}");
        }
        catch (UnauthorizedAccessException e)
        {
            throw new UnavailableException($"--save-snapshot {path}: {e.Message}");
        }
    }

    /// <summary>The guest image in file <paramref name="path"/>; a missing or malformed file is a UsageException.</summary>
    private static GuestImage LoadFile(string path)
    {
        if (!File.Exists(path))
            throw new UsageException($"'{path}' is neither a file nor a demo ({string.Join(", ", DemoGuests.All.Select(d => d.Name))})");
        try
        {
            return GuestImage.FromFile(path);
        }
        catch (GuestImageException e)
        {
            throw new UsageException($"{path}: {e.Message}");
        }
    }
}
