; Inno Setup script for CodeAct Desktop (ISCC /DAppVersion=... /DStage=... codeact-desktop.iss).
; Per-user install (no administrator rights), Start-menu entry, "Open with" for the file
; kinds the app reads, an uninstaller that keeps the user's conversations and models.
#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif
[Setup]
AppId={{6E2F5C59-4B4B-4E7C-9D0B-2C0DE5A1C7D3}
AppName=CodeAct Desktop
AppVersion={#AppVersion}
AppPublisher=CodeAct Desktop
DefaultDirName={localappdata}\Programs\CodeAct Desktop
DefaultGroupName=CodeAct Desktop
PrivilegesRequired=lowest
OutputBaseFilename=CodeActDesktop-{#AppVersion}-windows-x64-setup
SetupIconFile={#Stage}\codeact-desktop.ico
UninstallDisplayIcon={app}\codeact-desktop.ico
Compression=lzma2/max
SolidCompression=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
ChangesAssociations=yes
LicenseFile={#Stage}\THIRD_PARTY_LICENSES.txt

[Files]
Source: "{#Stage}\*"; DestDir: "{app}"; Flags: recursesubdirs createallsubdirs ignoreversion

[Icons]
Name: "{group}\CodeAct Desktop"; Filename: "{app}\runtime\pythonw.exe"; Parameters: "-I -m codeact_desktop"; IconFilename: "{app}\codeact-desktop.ico"; WorkingDir: "{userdocs}"
Name: "{group}\Uninstall CodeAct Desktop"; Filename: "{uninstallexe}"

[Registry]
; "Open with CodeAct Desktop" for tables, documents, images, audio, video and archives.
Root: HKCU; Subkey: "Software\Classes\Applications\CodeActDesktop.exe"; ValueType: string; ValueName: "FriendlyAppName"; ValueData: "CodeAct Desktop"; Flags: uninsdeletekey
Root: HKCU; Subkey: "Software\Classes\Applications\CodeActDesktop.exe\shell\open\command"; ValueType: string; ValueData: """{app}\runtime\pythonw.exe"" -I -m codeact_desktop ""%1"""
Root: HKCU; Subkey: "Software\Classes\Applications\CodeActDesktop.exe\SupportedTypes"; ValueType: string; ValueName: ".csv"; ValueData: ""
Root: HKCU; Subkey: "Software\Classes\Applications\CodeActDesktop.exe\SupportedTypes"; ValueType: string; ValueName: ".tsv"; ValueData: ""
Root: HKCU; Subkey: "Software\Classes\Applications\CodeActDesktop.exe\SupportedTypes"; ValueType: string; ValueName: ".xlsx"; ValueData: ""
Root: HKCU; Subkey: "Software\Classes\Applications\CodeActDesktop.exe\SupportedTypes"; ValueType: string; ValueName: ".json"; ValueData: ""
Root: HKCU; Subkey: "Software\Classes\Applications\CodeActDesktop.exe\SupportedTypes"; ValueType: string; ValueName: ".parquet"; ValueData: ""
Root: HKCU; Subkey: "Software\Classes\Applications\CodeActDesktop.exe\SupportedTypes"; ValueType: string; ValueName: ".pdf"; ValueData: ""
Root: HKCU; Subkey: "Software\Classes\Applications\CodeActDesktop.exe\SupportedTypes"; ValueType: string; ValueName: ".docx"; ValueData: ""
Root: HKCU; Subkey: "Software\Classes\Applications\CodeActDesktop.exe\SupportedTypes"; ValueType: string; ValueName: ".png"; ValueData: ""
Root: HKCU; Subkey: "Software\Classes\Applications\CodeActDesktop.exe\SupportedTypes"; ValueType: string; ValueName: ".jpg"; ValueData: ""
Root: HKCU; Subkey: "Software\Classes\Applications\CodeActDesktop.exe\SupportedTypes"; ValueType: string; ValueName: ".gguf"; ValueData: ""
Root: HKCU; Subkey: "Software\Classes\.csv\OpenWithList\CodeActDesktop.exe"; ValueType: none; Flags: uninsdeletekey
Root: HKCU; Subkey: "Software\Classes\.xlsx\OpenWithList\CodeActDesktop.exe"; ValueType: none; Flags: uninsdeletekey
Root: HKCU; Subkey: "Software\Classes\.pdf\OpenWithList\CodeActDesktop.exe"; ValueType: none; Flags: uninsdeletekey
Root: HKCU; Subkey: "Software\Classes\.json\OpenWithList\CodeActDesktop.exe"; ValueType: none; Flags: uninsdeletekey

[Run]
Filename: "{app}\runtime\pythonw.exe"; Parameters: "-I -m codeact_desktop"; Description: "Start CodeAct Desktop"; Flags: nowait postinstall skipifsilent
