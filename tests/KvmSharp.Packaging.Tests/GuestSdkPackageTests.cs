// SPDX-License-Identifier: MIT
using System.IO.Compression;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Text;

namespace KvmSharp.Packaging.Tests;

/// <summary>
/// The C guest SDK ships in the KvmSharp.Vmm package twice from one file: kvmsharp_guest.h at the package root beside
/// GUEST-ABI.md (for guest authors) and embedded in KvmSharp.Vmm.dll (GuestSdk.Header, which `kvmsharp new-guest`
/// writes) — both the repository's src/KvmSharp.Vmm/guest/kvmsharp_guest.h byte for byte.
/// </summary>
[Collection(PackedFeedCollection.Name)]
public sealed class GuestSdkPackageTests(PackedFeed feed)
{
    private static string RepositoryHeader =>
        File.ReadAllText(Path.Combine(PackedFeed.RepositoryRoot, "src", "KvmSharp.Vmm", "guest", "kvmsharp_guest.h"));

    [Fact]
    public void The_sandbox_package_ships_the_c_guest_header_beside_the_guest_abi()
    {
        Assert.True(feed.Pack.ExitCode == 0, feed.Pack.ToString());
        using var package = ZipFile.OpenRead(feed.PackagePath("KvmSharp.Vmm"));
        Assert.NotNull(package.GetEntry("GUEST-ABI.md"));
        var header = package.GetEntry("kvmsharp_guest.h");
        Assert.NotNull(header);
        using var reader = new StreamReader(header.Open());
        Assert.Equal(RepositoryHeader, reader.ReadToEnd());
    }

    [Fact]
    public void The_packaged_sandbox_assembly_embeds_the_same_header()
    {
        Assert.True(feed.Pack.ExitCode == 0, feed.Pack.ToString());
        using var package = ZipFile.OpenRead(feed.PackagePath("KvmSharp.Vmm"));
        using var copy = new MemoryStream();
        using (var dll = package.GetEntry("lib/net10.0/KvmSharp.Vmm.dll")!.Open()) dll.CopyTo(copy);
        copy.Position = 0;
        Assert.Equal(RepositoryHeader, Encoding.UTF8.GetString(ManifestResource(copy, "KvmSharp.Vmm.guest.kvmsharp_guest.h")));
    }

    /// <summary>An embedded resource's bytes, read from the assembly's metadata without loading it.</summary>
    private static byte[] ManifestResource(Stream assembly, string name)
    {
        using var pe = new PEReader(assembly);
        var metadata = pe.GetMetadataReader();
        foreach (var handle in metadata.ManifestResources)
        {
            var resource = metadata.GetManifestResource(handle);
            if (metadata.GetString(resource.Name) != name) continue;
            // Embedded resources: a u32 length then the bytes, at Offset in the CLI header's resources directory.
            var section = pe.GetSectionData(pe.PEHeaders.CorHeader!.ResourcesDirectory.RelativeVirtualAddress + (int)resource.Offset);
            var reader = section.GetReader();
            return reader.ReadBytes(reader.ReadInt32());
        }
        Assert.Fail($"the assembly has no resource {name}: {string.Join(", ", metadata.ManifestResources.Select(h => metadata.GetString(metadata.GetManifestResource(h).Name)))}");
        return [];
    }
}
