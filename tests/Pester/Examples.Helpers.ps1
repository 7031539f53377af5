# Dot-sourced by KvmSnapshot.Examples.Tests.ps1; not a test file itself. Reads the examples of docs/help, builds the
# world they are written for, runs them in a fresh pwsh and compares what they print with what they show.
#
# THE EXAMPLES' WORLD. The examples are written for one host; each example runs in a copy of it (a fresh one, or
# the one shared by the examples that only read: see EXAMPLES THAT ONLY READ below):
#   folder   /var/lib/libvirt/images, /vm, /srv/img(s)    -> a new scratch folder (the current location too)
#            /var/lib/libvirt/save, /tmp, /backup, /srv/import -> save, tmp, backup, import below it
#   images   base.qcow2 <- guest1.qcow2 <- snap1.qcow2 <- active.qcow2   (guest1 holds internal snapshots test-1, test-2)
#            debian12.qcow2 <- mail1.qcow2, mail2.qcow2, web2.qcow2      (a shared template)
#            web1.qcow2 <- web1.snap1 <- web1.snap2, web1-data.raw       (the disks of web1)
#            db1.qcow2                                                   (the disk of db1)
#            base.raw <- overlay.qcow2                                   (a qcow2 on a raw base, format probed)
#            import/disk1.img                                            (a raw image)
#   domains  web1 (vda: web1.snap2, vdb: web1-data.raw), web2 (vda: web2.qcow2), db1 (vda: db1.qcow2): persistent
#            TCG domains on qemu:///system (no OS), running, defined only when the example names them. Their names become
#            kvmsnap-t-ex<run>-web1 and so on, in the code and in the output the example shows; a pattern on their stem
#            (web*, db*) becomes kvmsnap-t-ex<run>-web* (db*), so it matches this world's domains only.
# Substitution is textual and explicit: Convert-ExampleText below is the whole of it.
#
# WHAT IS COMPARED. Lines after a command line ("PS /> …", with its continuation lines) up to the next command are
# what the example shows it prints. A shown line "Verb-Noun: message" is an error the command must write (a trailing
# "..." matches any rest); any other error fails the example. The other shown lines must appear in the command's
# output, in order, with runs of white space collapsed (so column widths may differ) and times, dates and free
# space masked (they differ every run). Output a command prints that the example does not show is not an error.

$script:DomainPlaceholders = 'web1', 'web2', 'web3', 'db1'
$script:WorldCount = 0
# Domains defined and started, and worlds built, this run (reported at its end).
$script:DomainsStarted = 0

# The examples of every help page: one object per "### Example N: title" section, with its commands and the lines
# each shows.
function Get-HelpExample {
    param([Parameter(Mandatory)][string] $HelpDirectory)
    foreach ($page in Get-ChildItem -LiteralPath $HelpDirectory -Filter '*.md' | Sort-Object Name) {
        # Cmdlet pages number their examples ("### Example 2: …"); the about topic gives each a title ("### …").
        $cmdlet = $page.BaseName -replace '\.help$', ''
        $isAbout = $cmdlet -like 'about_*'
        $count = 0
        $lines = Get-Content -LiteralPath $page.FullName
        $inExamples = $false
        $current = $null
        $inCode = $false
        foreach ($line in $lines) {
            if ($line -match '^## ') { $inExamples = $line -eq '## EXAMPLES' }
            if (-not $inExamples) { continue }
            if (($isAbout -and $line -match '^### ()(.*)$') -or (-not $isAbout -and $line -match '^### Example (\d+):\s*(.*)$')) {
                if ($current) { $current }
                $count++
                $current = [pscustomobject]@{ Key = "$cmdlet #$count"; Cmdlet = $cmdlet; Number = $count; Title = $Matches[2]; Code = [Collections.Generic.List[string]]::new(); Seen = $false }
                continue
            }
            if (-not $current) { continue }
            if ($line -match '^```(powershell)?\s*$' -and -not $inCode -and -not $current.Seen) { $inCode = $true; continue }
            if ($inCode -and $line -match '^```\s*$') { $inCode = $false; $current.Seen = $true; continue }
            if ($inCode) { $current.Code.Add($line) }
        }
        if ($current) { $current }
    }
}

# Splits an example's code block into commands ("PS <path>> " lines, continued until the parser sees a complete
# statement) and the lines each shows.
function Split-ExampleCommand {
    param([string[]] $Lines)
    $commands = [Collections.Generic.List[object]]::new()
    # A block without prompts (the about topic's) is one script that shows no output.
    if (-not ($Lines -match '^PS [^>]*> ')) { return , @([pscustomobject]@{ Code = $Lines -join "`n"; Shown = @() }) }
    $i = 0
    while ($i -lt $Lines.Count) {
        if ($Lines[$i] -notmatch '^PS [^>]*> (.*)$') { $i++; continue }
        $code = $Matches[1]
        $i++
        while ($true) {
            $errors = $null
            $null = [Management.Automation.Language.Parser]::ParseInput($code, [ref]$null, [ref]$errors)
            $incomplete = @($errors | Where-Object IncompleteInput).Count -gt 0
            if (-not $incomplete -or $i -ge $Lines.Count) { break }
            $code += "`n" + $Lines[$i]
            $i++
        }
        $shown = [Collections.Generic.List[string]]::new()
        while ($i -lt $Lines.Count -and $Lines[$i] -notmatch '^PS [^>]*> ') {
            if ($Lines[$i].Trim()) { $shown.Add($Lines[$i]) }
            $i++
        }
        $commands.Add([pscustomobject]@{ Code = $code; Shown = $shown.ToArray() })
    }
    $commands.ToArray()
}

# The substitution, applied alike to an example's code and to the lines it shows.
function Convert-ExampleText {
    param([string] $Text, [hashtable] $World)
    # Placeholders first become markers, then paths, so a replaced path is never replaced again.
    $map = [ordered]@{
        '/var/lib/libvirt/save'   = [pscustomobject]@{ Pattern = '/var/lib/libvirt/save(?=/|\b)'; Value = "$($World.Store)/save" }
        '/var/lib/libvirt/images' = [pscustomobject]@{ Pattern = '/var/lib/libvirt/images(?=/|\b)'; Value = $World.Store }
        '/srv/import'             = [pscustomobject]@{ Pattern = '(?<![\w.-])/srv/import(?=/)'; Value = "$($World.Store)/import" }
        '/srv/img'                = [pscustomobject]@{ Pattern = '(?<![\w.-])/srv/img(?=/)'; Value = $World.Store }
        '/srv/images'             = [pscustomobject]@{ Pattern = '(?<![\w.-])/srv/images(?=/)'; Value = $World.Store }
        '/vm'                     = [pscustomobject]@{ Pattern = '(?<![\w.-])/vm(?=/|>|\b)'; Value = $World.Store }
        '/tmp'                    = [pscustomobject]@{ Pattern = '(?<![\w.-])/tmp(?=/)'; Value = "$($World.Store)/tmp" }
        '/backup'                 = [pscustomobject]@{ Pattern = '(?<![\w.-])/backup(?=/)'; Value = "$($World.Store)/backup" }
    }
    foreach ($name in $script:DomainPlaceholders) {
        $map[$name] = [pscustomobject]@{ Pattern = "(?<![\w./-])$name(?![\w./-])"; Value = $World.Domains[$name] }
    }
    # A domain pattern on a placeholder's stem (web*, db*) matches the world's domains of that stem.
    foreach ($stem in 'web', 'db') {
        $map["$stem*"] = [pscustomobject]@{ Pattern = "(?<![\w./-])$stem\*"; Value = ($World.Domains["${stem}1"] -replace "${stem}1$", "$stem*") }
    }
    $n = 0
    foreach ($key in @($map.Keys)) { $Text = $Text -replace $map[$key].Pattern, "`u{1}$n`u{1}"; $n++ }
    $n = 0
    foreach ($key in @($map.Keys)) { $Text = $Text.Replace("`u{1}$n`u{1}", $map[$key].Value); $n++ }
    $Text
}

# Masks what differs on every run, and collapses white space.
function Format-ComparableText {
    param([string] $Text, [string[]] $Masks = @())
    $Text = $Text -replace '\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?', '<time>'
    $Text = $Text -replace '\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d\d(:\d\d)?( [AP]M)?', '<time>'
    $Text = $Text -replace '[\d.]+ [KMGT]iB free', '<n> free'
    foreach ($mask in $Masks) { $Text = $Text -replace $mask, '<v>' }
    ($Text -replace '\s+', ' ').Trim()
}

function Invoke-WorldTool {
    param([Parameter(Mandatory)][string] $Tool, [Parameter(Mandatory)][string[]] $Arguments)
    $output = & $Tool @Arguments 2>&1
    if ($LASTEXITCODE -ne 0) { throw "$Tool $($Arguments -join ' ') failed with exit code ${LASTEXITCODE}: $($output -join [Environment]::NewLine)" }
}

# The image files of the examples' world, made once per run. Backing files are recorded relative to the overlay
# (as New-KvmDiskImage -RelativeBackingFile does), so a copy of the folder is a complete world of its own.
function New-ExampleTemplate {
    param([Parameter(Mandatory)][string] $Path)
    if (Test-Path -LiteralPath $Path) { Remove-Item -LiteralPath $Path -Recurse -Force }
    foreach ($sub in '', 'save', 'tmp', 'backup', 'import') { $null = New-Item -ItemType Directory -Path (Join-Path $Path $sub) -Force }
    Push-Location -LiteralPath $Path
    try {
        function Qcow2 { param($Name, $Backing, $Data, $BackingFormat = 'qcow2')
            if ($Backing) { Invoke-WorldTool qemu-img 'create', '-q', '-f', 'qcow2', '-b', $Backing, '-F', $BackingFormat, $Name }
            else { Invoke-WorldTool qemu-img 'create', '-q', '-f', 'qcow2', $Name, '20G' }
            if ($Data) { Invoke-WorldTool qemu-io '-f', 'qcow2', '-c', "write -P 0x5a $Data", $Name }
        }
        Qcow2 base.qcow2 -Data '0 4M'
        Qcow2 guest1.qcow2 base.qcow2 -Data '4M 2M'
        Invoke-WorldTool qemu-img 'snapshot', '-c', 'test-1', 'guest1.qcow2'
        Invoke-WorldTool qemu-img 'snapshot', '-c', 'test-2', 'guest1.qcow2'
        Qcow2 snap1.qcow2 guest1.qcow2 -Data '6M 2M'
        Qcow2 active.qcow2 snap1.qcow2 -Data '8M 1M'
        Qcow2 debian12.qcow2 -Data '0 2M'
        Qcow2 mail1.qcow2 debian12.qcow2
        Qcow2 mail2.qcow2 debian12.qcow2
        Qcow2 web2.qcow2 debian12.qcow2
        Qcow2 web1.qcow2 -Data '0 2M'
        Qcow2 web1.snap1 web1.qcow2 -Data '2M 16M'
        Qcow2 web1.snap2 web1.snap1 -Data '18M 1M'
        Invoke-WorldTool qemu-img 'create', '-q', '-f', 'raw', 'web1-data.raw', '16M'
        Qcow2 db1.qcow2 -Data '0 1M'
        Invoke-WorldTool qemu-img 'create', '-q', '-f', 'raw', 'base.raw', '64M'
        Qcow2 overlay.qcow2 base.raw -BackingFormat raw
        Invoke-WorldTool qemu-img 'create', '-q', '-f', 'raw', 'import/disk1.img', '16M'
    }
    finally {
        Pop-Location
    }
}

# A fresh copy of the examples' world for one example; domains only for the names its text uses.
function New-ExampleWorld {
    param([Parameter(Mandatory)][string] $Run, [Parameter(Mandatory)] $Example, [string[]] $Domains, [Parameter(Mandatory)][string] $Template)
    $store = Join-Path ([IO.Path]::GetTempPath()) ("kvmsnap-t-ex$Run-" + ($Example.Key -replace '\W+', '-').ToLowerInvariant())
    if (Test-Path -LiteralPath $store) { Remove-Item -LiteralPath $store -Recurse -Force }
    $null = New-Item -ItemType Directory -Path $store
    $world = @{ Store = $store; Domains = @{}; Created = [Collections.Generic.List[string]]::new() }
    # A number per world, so a domain a failed clean-up left behind cannot break the next example.
    $script:WorldCount++
    foreach ($name in $script:DomainPlaceholders) { $world.Domains[$name] = "kvmsnap-t-ex$Run$($script:WorldCount)-$name" }

    # The files are made once per run (New-ExampleTemplate) and copied: one process instead of twenty.
    Invoke-WorldTool cp '-a', '--sparse=always', "$Template/.", $store
    $disks = @{
        web1 = @(@('vda', 'web1.snap2', 'qcow2'), @('vdb', 'web1-data.raw', 'raw'))
        web2 = @(, @('vda', 'web2.qcow2', 'qcow2'))
        db1  = @(, @('vda', 'db1.qcow2', 'qcow2'))
    }
    try {
        # One virsh process defines and starts them all ("define a.xml; start a; define b.xml; …"). virsh goes on after
        # a command that failed and exits with the last one's code, so its output is searched for errors.
        $commands = foreach ($name in $Domains) {
            $disksXml = foreach ($d in $disks[$name]) {
                "<disk type='file' device='disk'><driver name='qemu' type='$($d[2])' cache='writethrough'/><source file='$(Join-Path $store $d[1])'/><target dev='$($d[0])' bus='virtio'/></disk>"
            }
            $xml = "<domain type='qemu'><name>$($world.Domains[$name])</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os><devices>$($disksXml -join '')</devices></domain>"
            $xmlPath = Join-Path $store "$name.xml"
            Set-Content -LiteralPath $xmlPath -Value $xml
            # Persistent, as most domains are (reverting an external snapshot needs a definition to rewrite).
            $world.Created.Add($world.Domains[$name])
            "define $xmlPath; start $($world.Domains[$name])"
        }
        if ($commands) {
            $output = & virsh -c qemu:///system ($commands -join '; ') 2>&1
            if ($LASTEXITCODE -ne 0 -or ($output -match '^error:')) { throw "virsh $($commands -join '; ') failed: $($output -join [Environment]::NewLine)" }
            $script:DomainsStarted += @($commands).Count
        }
        foreach ($name in $Domains) { Remove-Item -LiteralPath (Join-Path $store "$name.xml") }
    }
    catch {
        Remove-ExampleWorld $world
        throw
    }
    $world
}

function Remove-ExampleWorld {
    param([hashtable] $World)
    if ($World.Created.Count) {
        # One virsh process destroys and undefines them all; one more lists what is left. Only a domain still there
        # (a snapshot's metadata that undefine refused, a libvirtd that was restarting) is gone after one by one.
        $commands = foreach ($name in $World.Created) { "destroy $name; undefine $name --snapshots-metadata --checkpoints-metadata --managed-save" }
        $null = & virsh -c qemu:///system ($commands -join '; ') 2>&1
        $left = @(& virsh -c qemu:///system list --all --name 2>&1 | Where-Object { $_ -in $World.Created })
        if ($LASTEXITCODE -ne 0) { $left = @($World.Created) }
        foreach ($name in $left) {
            foreach ($snapshot in (& virsh -c qemu:///system snapshot-list $name --name 2>$null) | Where-Object { $_ }) {
                $null = & virsh -c qemu:///system snapshot-delete $name $snapshot --metadata 2>&1
            }
            # libvirtd is shared and sometimes restarted: try again before leaving a domain behind.
            for ($try = 0; $try -lt 10; $try++) {
                $null = & virsh -c qemu:///system destroy $name 2>&1
                $null = & virsh -c qemu:///system undefine $name --snapshots-metadata --checkpoints-metadata --managed-save 2>&1
                $null = & virsh -c qemu:///system domstate $name 2>&1
                if ($LASTEXITCODE -ne 0) { break }
                Start-Sleep -Seconds 2
            }
        }
    }
    # Domains restored from a saved state (Restore-KvmDomainState) come back under the same names.
    Remove-Item -LiteralPath $World.Store -Recurse -Force -ErrorAction SilentlyContinue
}

# EXAMPLES THAT ONLY READ share a world. Building a world (copying the files, defining and starting its TCG domains,
# tearing them down) is most of an example's time, so the examples that only read it run in one built once per set of
# domains and kept for the run. Which examples only read is decided by a rule, not a list: no setup of their own
# (no Before, no Answers), and every command their code calls (found by the parser, in script blocks too) is a
# KvmSnapshot cmdlet that reads (Get-Kvm*, Test-Kvm*, Format-Kvm*, or any called with -WhatIf) or one of
# $ReadingCommands. And it is checked:
# the world's state (every file's path, size and write time; each domain's state, snapshots, checkpoints, disks and
# block jobs, as virsh reports them) is taken before and after such an example, and an example that changed it fails
# (and the world is not used again). Every other example gets a fresh world, as before.
$script:ReadingCommands = @('Where-Object', 'ForEach-Object', 'Select-Object', 'Sort-Object', 'Measure-Object', 'Group-Object',
    'Out-Null', 'Out-String', 'Format-Table', 'Format-List', 'Get-ChildItem', 'Get-Date', 'Describe', 'It', 'Should')

function Test-ExampleReadsOnly {
    param([Parameter(Mandatory)][string[]] $Code, [hashtable] $Settings = @{})
    if ($Settings.Before -or $Settings.Answers) { return $false }
    foreach ($c in $Code) {
        $errors = $null
        $ast = [Management.Automation.Language.Parser]::ParseInput($c, [ref]$null, [ref]$errors)
        if ($errors) { return $false }
        foreach ($command in $ast.FindAll({ param($a) $a -is [Management.Automation.Language.CommandAst] }, $true)) {
            $name = $command.GetCommandName()
            if (-not $name) { return $false }   # & $something: not known to read
            # A KvmSnapshot cmdlet called with -WhatIf only says what it would do.
            $whatIf = $name -like '*-Kvm*' -and @($command.CommandElements | Where-Object {
                    $_ -is [Management.Automation.Language.CommandParameterAst] -and $_.ParameterName -eq 'WhatIf' -and -not $_.Argument }).Count -gt 0
            if ($name -notmatch '^(Get|Test|Format)-Kvm\w+$' -and $name -notin $script:ReadingCommands -and -not $whatIf) { return $false }
        }
    }
    $true
}

# What a shared world must still be after an example ran in it (see above).
function Get-ExampleWorldState {
    param([Parameter(Mandatory)][hashtable] $World)
    $files = foreach ($item in Get-ChildItem -LiteralPath $World.Store -Recurse -Force | Sort-Object FullName) {
        $size = if ($item -is [IO.FileInfo]) { $item.Length } else { '-' }
        '{0} {1} {2}' -f $item.FullName.Substring($World.Store.Length), $size, $item.LastWriteTimeUtc.Ticks
    }
    $domains = @()
    if ($World.Created.Count) {
        $commands = foreach ($name in $World.Created) {
            "domstate $name; snapshot-list $name --name; checkpoint-list $name --name; domblklist $name; domjobinfo $name"
            foreach ($disk in 'vda', 'vdb') { "blockjob $name $disk --info" }
        }
        $domains = & virsh -c qemu:///system ($commands -join '; ') 2>&1 | ForEach-Object { "$_" }
    }
    (@($files) + @($domains)) -join "`n"
}

# Runs the commands in a fresh pwsh in the world's folder, one after the other in one session. Returns, per
# command, the lines it printed and the errors it wrote ("Verb-Noun: message").
# The fresh pwsh of an example without answers to type is one started ahead while the example before ran (see
# Start-SpareExamplePwsh): a new process like any other, that has done nothing but wait for its script's path.
function Invoke-ExampleCommand {
    param([Parameter(Mandatory)][hashtable] $World, [Parameter(Mandatory)][string[]] $Code, [string[]] $Answers, [string] $ModulePath)
    $body = [Text.StringBuilder]::new()
    $null = $body.AppendLine("`$PSStyle.OutputRendering = 'PlainText'")
    $null = $body.AppendLine("Import-Module '$ModulePath' -ErrorAction Stop")
    $null = $body.AppendLine("Set-Location -LiteralPath '$($World.Store)'")
    for ($n = 0; $n -lt $Code.Count; $n++) {
        $null = $body.AppendLine("'##CMD $n'")
        $null = $body.AppendLine('$Error.Clear()')
        $null = $body.AppendLine("try { . {`n$($Code[$n])`n} 2>`$null | Out-String -Width 400 -Stream } catch { }")
        $null = $body.AppendLine('foreach ($e in @($Error)) { if ($e -is [Management.Automation.ErrorRecord]) { "##ERR $($e.InvocationInfo.MyCommand.Name): $($e.Exception.Message)" } else { "##ERR $e" } }')
    }
    $file = Join-Path $World.Store '.example.ps1'
    Set-Content -LiteralPath $file -Value $body.ToString()
    if ($Answers) {
        # Answers are typed at prompts: a pwsh started for it, interactive, that reads them from its stdin.
        $command = Get-ChildPwshCommand
        $arguments = @($command | Select-Object -Skip 1) + @('-NoProfile', '-File', $file)
        $output = $Answers | & $command[0] @arguments 2>&1
    }
    else {
        $output = Invoke-SpareExamplePwsh -ScriptPath $file
    }
    Remove-Item -LiteralPath $file -Force -ErrorAction SilentlyContinue   # -Force: a dot file is hidden
    $results = @()
    $current = $null
    foreach ($line in @($output | ForEach-Object { "$_" })) {
        if ($line -match '^##CMD (\d+)$') { $current = [pscustomobject]@{ Lines = [Collections.Generic.List[string]]::new(); Errors = [Collections.Generic.List[string]]::new() }; $results += $current; continue }
        if (-not $current) { continue }
        if ($line -match '^##ERR (.*)$') { $current.Errors.Add($Matches[1]) } else { $current.Lines.Add($line) }
    }
    , $results
}

# A fresh, non-interactive pwsh (no profile) that waits for the path of one script on its stdin, runs that script as
# -File would, and exits. Its stdout and stderr are one pipe (2>&1 in the shell that starts it), so its lines come
# in the order it wrote them. Started ahead of need: pwsh's start (about a second of CPU) overlaps the work before.
$script:SpareExamplePwsh = $null
function Start-SpareExamplePwsh {
    $runner = Join-Path ([IO.Path]::GetTempPath()) "kvmsnap-t-ex-runner-$PID.ps1"
    if (-not (Test-Path -LiteralPath $runner)) {
        Set-Content -LiteralPath $runner -Value @'
$path = [Console]::In.ReadLine()
if (-not $path) { exit 2 }
& $path
'@
    }
    $command = Get-ChildPwshCommand
    $info = [Diagnostics.ProcessStartInfo]::new('/bin/sh')
    foreach ($a in @('-c', 'exec "$0" "$@" 2>&1') + $command + @('-NoProfile', '-NonInteractive', '-File', $runner)) { $info.ArgumentList.Add($a) }
    $info.RedirectStandardInput = $true
    $info.RedirectStandardOutput = $true
    $info.UseShellExecute = $false
    $info.StandardOutputEncoding = [Text.UTF8Encoding]::new($false)
    $process = [Diagnostics.Process]::Start($info)
    [pscustomobject]@{ Process = $process; Output = $process.StandardOutput.ReadToEndAsync() }
}

function Invoke-SpareExamplePwsh {
    param([Parameter(Mandatory)][string] $ScriptPath)
    $child = $script:SpareExamplePwsh
    if (-not $child -or $child.Process.HasExited) { $child = Start-SpareExamplePwsh }
    $script:SpareExamplePwsh = $null
    $child.Process.StandardInput.WriteLine($ScriptPath)
    $child.Process.StandardInput.Close()
    # The next example's pwsh starts while this one runs.
    $script:SpareExamplePwsh = Start-SpareExamplePwsh
    if (-not $child.Process.WaitForExit(600000)) {
        $child.Process.Kill($true)
        throw "the example's pwsh did not exit within 10 minutes"
    }
    $text = $child.Output.GetAwaiter().GetResult()
    $child.Process.Dispose()
    $lines = @($text -split '\r?\n')
    if ($lines.Count -and $lines[-1] -eq '') { $lines = @($lines | Select-Object -SkipLast 1) }
    $lines
}

function Stop-SpareExamplePwsh {
    $child = $script:SpareExamplePwsh
    $script:SpareExamplePwsh = $null
    if ($child -and -not $child.Process.HasExited) {
        $child.Process.StandardInput.Close()   # it reads no path and exits
        if (-not $child.Process.WaitForExit(30000)) { $child.Process.Kill($true) }
    }
    Remove-Item -LiteralPath (Join-Path ([IO.Path]::GetTempPath()) "kvmsnap-t-ex-runner-$PID.ps1") -ErrorAction SilentlyContinue
}

# Compares one command's run with what the example shows; returns the differences (none: it matched).
function Compare-ExampleOutput {
    param([string[]] $Shown, $Actual, [string[]] $Masks)
    $problems = @()
    $shownErrors = @($Shown | Where-Object { $_ -match '^[A-Z][a-z]+-Kvm\w+: ' })
    $shownOutput = @($Shown | Where-Object { $_ -notmatch '^[A-Z][a-z]+-Kvm\w+: ' })
    if ($Actual.Errors.Count -ne $shownErrors.Count) {
        $problems += "wrote $($Actual.Errors.Count) error(s), the example shows $($shownErrors.Count): $($Actual.Errors -join ' | ')"
    }
    else {
        for ($k = 0; $k -lt $shownErrors.Count; $k++) {
            $want = Format-ComparableText $shownErrors[$k] $Masks
            $got = Format-ComparableText $Actual.Errors[$k] $Masks
            $match = if ($want.EndsWith('...')) { $got.StartsWith($want.Substring(0, $want.Length - 3).TrimEnd()) } else { $got -eq $want }
            if (-not $match) { $problems += "error differs:`n  shown: $want`n  wrote: $got" }
        }
    }
    $text = Format-ComparableText ($Actual.Lines -join "`n") $Masks
    $at = 0
    foreach ($line in $shownOutput) {
        $want = Format-ComparableText $line $Masks
        $found = $text.IndexOf($want, $at, [StringComparison]::Ordinal)
        if ($found -lt 0) { $problems += "shown line not printed (in order): '$want'"; continue }
        $at = $found + $want.Length
    }
    if ($problems) { $problems += "printed:`n" + ($Actual.Lines -join "`n") }
    $problems
}
