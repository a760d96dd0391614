package unattend_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"github.com/imprint-osd/imprint/internal/golden"
	"os"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/unattend"
)

const secret = "S3cr&t<Pa55>"

func full(m unattend.Method) unattend.Options {
	return unattend.Options{
		ComputerName: "PC-0042", TimeZone: "W. Europe Standard Time",
		SystemLocale: "de-DE", UserLocale: "de-CH", UILanguage: "de-DE", InputLocale: "0807:00000807",
		ProductKey: "NPPR9-FWDCX-D2C8J-H872K-2YT43", Owner: "Ops & IT <EMEA>", Organization: "Contoso",
		AdminPassword: secret, DomainJoinBlob: "ARAIAMzMzMyQAQAAAAAAAAAAAgABAAAA", Method: m,
	}
}

// node is a generic XML tree for structural checks.
type node struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Nodes   []node     `xml:",any"`
	Text    string     `xml:",chardata"`
}

func (n node) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// find returns the text at a path of element names below n ("" when absent).
func (n node) find(path ...string) (node, bool) {
	cur := n
	for _, p := range path {
		found := false
		for _, c := range cur.Nodes {
			if c.XMLName.Local == p {
				cur, found = c, true
				break
			}
		}
		if !found {
			return node{}, false
		}
	}
	return cur, true
}

func parse(t *testing.T, doc []byte) node {
	t.Helper()
	var n node
	if err := xml.Unmarshal(doc, &n); err != nil {
		t.Fatalf("generated XML does not parse: %v\n%s", err, doc)
	}
	return n
}

// component returns the component called name in pass.
func component(t *testing.T, root node, pass, name string) (node, bool) {
	t.Helper()
	for _, s := range root.Nodes {
		if s.XMLName.Local != "settings" || s.attr("pass") != pass {
			continue
		}
		for _, c := range s.Nodes {
			if c.attr("name") == name {
				return c, true
			}
		}
	}
	return node{}, false
}

func unhide(t *testing.T, v string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		t.Fatalf("hidden password %q: %v", v, err)
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

func TestGoldenPerMethod(t *testing.T) {
	custom, err := os.ReadFile("testdata/input-custom.xml")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]unattend.Options{
		"setupcomplete":   full(unattend.SetupComplete),
		"specialize":      full(unattend.SpecializeRunSync),
		"autologon":       full(unattend.AutoAdminLogonOnce),
		"custom":          {Method: unattend.CustomUnattend, Custom: custom},
		"custom-nospec":   {Method: unattend.CustomUnattend, Custom: []byte(`<unattend xmlns="urn:schemas-microsoft-com:unattend"></unattend>`)},
		"minimal-default": {},
	}
	for name, o := range cases {
		t.Run(name, func(t *testing.T) {
			res, err := unattend.Build(o)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, name+".xml", res.Unattend)
			golden.Check(t, name+".SetupComplete.cmd", res.SetupComplete)
			for _, out := range [][]byte{res.Unattend, res.SetupComplete, []byte(res.RunOnce)} {
				if o.AdminPassword != "" && bytes.Contains(out, []byte(o.AdminPassword)) {
					t.Errorf("the password appears in clear in the output:\n%s", out)
				}
			}
		})
	}
}

// The generated files have the structure Windows Setup reads: which
// component in which pass, for each method, and secrets in hidden form.
func TestStructure(t *testing.T) {
	for _, m := range []unattend.Method{unattend.SetupComplete, unattend.SpecializeRunSync, unattend.AutoAdminLogonOnce} {
		t.Run(m.String(), func(t *testing.T) {
			res, err := unattend.Build(full(m))
			if err != nil {
				t.Fatal(err)
			}
			root := parse(t, res.Unattend)
			if root.XMLName.Space != "urn:schemas-microsoft-com:unattend" || root.XMLName.Local != "unattend" {
				t.Fatalf("root %v", root.XMLName)
			}
			for _, s := range root.Nodes {
				if p := s.attr("pass"); p != "specialize" && p != "oobeSystem" {
					t.Errorf("pass %q: only specialize and oobeSystem run on an applied image", p)
				}
				for _, c := range s.Nodes {
					if c.attr("processorArchitecture") != "amd64" || c.attr("publicKeyToken") != "31bf3856ad364e35" ||
						c.attr("language") != "neutral" || c.attr("versionScope") != "nonSxS" {
						t.Errorf("component %s attributes %v", c.attr("name"), c.Attrs)
					}
				}
			}
			shell, ok := component(t, root, "specialize", "Microsoft-Windows-Shell-Setup")
			if !ok {
				t.Fatal("no specialize Shell-Setup")
			}
			for k, want := range map[string]string{"ComputerName": "PC-0042", "TimeZone": "W. Europe Standard Time",
				"ProductKey": "NPPR9-FWDCX-D2C8J-H872K-2YT43", "RegisteredOwner": "Ops & IT <EMEA>", "RegisteredOrganization": "Contoso"} {
				if n, _ := shell.find(k); n.Text != want {
					t.Errorf("specialize %s = %q, want %q", k, n.Text, want)
				}
			}
			intl, _ := component(t, root, "oobeSystem", "Microsoft-Windows-International-Core")
			for k, want := range map[string]string{"SystemLocale": "de-DE", "UserLocale": "de-CH", "UILanguage": "de-DE", "InputLocale": "0807:00000807"} {
				if n, _ := intl.find(k); n.Text != want {
					t.Errorf("oobeSystem %s = %q, want %q", k, n.Text, want)
				}
			}
			join, _ := component(t, root, "specialize", "Microsoft-Windows-UnattendedJoin")
			if n, _ := join.find("Identification", "Provisioning", "AccountData"); n.Text != "ARAIAMzMzMyQAQAAAAAAAAAAAgABAAAA" {
				t.Errorf("AccountData %q", n.Text)
			}
			oobe, _ := component(t, root, "oobeSystem", "Microsoft-Windows-Shell-Setup")
			pw, _ := oobe.find("UserAccounts", "AdministratorPassword", "Value")
			plain, _ := oobe.find("UserAccounts", "AdministratorPassword", "PlainText")
			if unhide(t, pw.Text) != secret+"AdministratorPassword" || plain.Text != "false" {
				t.Errorf("AdministratorPassword %q (PlainText %q) does not hide the password", pw.Text, plain.Text)
			}
			for _, k := range []string{"HideEULAPage", "HideOEMRegistrationScreen", "HideOnlineAccountScreens", "HideWirelessSetupInOOBE", "HideLocalAccountScreen"} {
				if n, _ := oobe.find("OOBE", k); n.Text != "true" {
					t.Errorf("OOBE %s = %q", k, n.Text)
				}
			}
			deployment, hasDeployment := component(t, root, "specialize", "Microsoft-Windows-Deployment")
			var paths []string
			if rs, ok := deployment.find("RunSynchronous"); ok {
				for _, c := range rs.Nodes {
					if n, _ := c.find("Path"); n.Text != "" {
						paths = append(paths, n.Text)
					}
				}
			}
			al, hasAutoLogon := oobe.find("AutoLogon")
			cmd := string(res.SetupComplete)
			switch m {
			case unattend.SetupComplete:
				if !strings.Contains(cmd, unattend.DefaultCommand) || len(paths) != 1 || hasAutoLogon || res.RunOnce != "" {
					t.Errorf("SetupComplete: cmd %q, RunSynchronous %q, AutoLogon %v, RunOnce %q", cmd, paths, hasAutoLogon, res.RunOnce)
				}
			case unattend.SpecializeRunSync:
				if !hasDeployment || len(paths) != 2 || paths[1] != unattend.DefaultCommand || strings.Contains(cmd, unattend.DefaultCommand) {
					t.Errorf("specialize: RunSynchronous %q, SetupComplete %q", paths, cmd)
				}
			case unattend.AutoAdminLogonOnce:
				user, _ := al.find("Username")
				alpw, _ := al.find("Password", "Value")
				count, _ := al.find("LogonCount")
				if !hasAutoLogon || user.Text != "Administrator" || unhide(t, alpw.Text) != secret+"Password" || count.Text != "1" {
					t.Errorf("AutoLogon %+v", al)
				}
				if res.RunOnce != unattend.DefaultCommand || hasDeployment || strings.Contains(cmd, unattend.DefaultCommand) {
					t.Errorf("autologon: RunOnce %q, Deployment %v", res.RunOnce, hasDeployment)
				}
			}
			if !strings.Contains(cmd, `del /f /q "%WINDIR%\Panther\unattend.xml"`) {
				t.Errorf("SetupComplete.cmd does not remove the answer file:\n%s", cmd)
			}
		})
	}
}

func TestCustomKeepsItsContentAndOrdersAfterIt(t *testing.T) {
	custom, _ := os.ReadFile("testdata/input-custom.xml")
	res, err := unattend.Build(unattend.Options{Method: unattend.SpecializeRunSync, Custom: custom})
	if err != nil {
		t.Fatal(err)
	}
	root := parse(t, res.Unattend)
	d, _ := component(t, root, "specialize", "Microsoft-Windows-Deployment")
	rs, _ := d.find("RunSynchronous")
	var orders, paths []string
	for _, c := range rs.Nodes {
		o, _ := c.find("Order")
		p, _ := c.find("Path")
		orders, paths = append(orders, o.Text), append(paths, p.Text)
	}
	if diff := cmp.Diff([]string{"1", "5", "6"}, orders); diff != "" {
		t.Errorf("orders (-want +got):\n%s", diff)
	}
	if paths[1] != `cmd /c echo corp>C:\corp.txt` || paths[2] != unattend.DefaultCommand {
		t.Errorf("paths %q", paths)
	}
	// Every byte of the custom file is still there, in order.
	at := bytes.Index(res.Unattend, []byte("<RunSynchronousCommand wcm:action=\"add\" xmlns:wcm"))
	at = bytes.LastIndexByte(res.Unattend[:at], '\n') + 1
	if at <= 0 || !bytes.Equal(append(bytes.Clone(res.Unattend[:at]), res.Unattend[bytes.Index(res.Unattend[at:], []byte("</RunSynchronousCommand>"))+at+len("</RunSynchronousCommand>\n"):]...), custom) {
		t.Errorf("the custom file was changed beyond the insertion:\n%s", res.Unattend)
	}
	// SetupComplete.cmd leaves the custom file as it is.
	res, err = unattend.Build(unattend.Options{Method: unattend.SetupComplete, Custom: custom})
	if err != nil || !bytes.Equal(res.Unattend, custom) {
		t.Errorf("SetupComplete with a custom file: %v\n%s", err, res.Unattend)
	}
}

func TestBadInputIsRefused(t *testing.T) {
	cases := map[string]struct {
		o    unattend.Options
		want string
	}{
		"long name":       {unattend.Options{ComputerName: "ABCDEFGHIJKLMNOP"}, "longer than 15"},
		"name with dot":   {unattend.Options{ComputerName: "pc.corp"}, "contains '.'"},
		"digits":          {unattend.Options{ComputerName: "12345"}, "all digits"},
		"autologon no pw": {unattend.Options{Method: unattend.AutoAdminLogonOnce}, "AdminPassword"},
		"custom missing":  {unattend.Options{Method: unattend.CustomUnattend}, "needs the Unattend content item"},
		"custom not xml":  {unattend.Options{Method: unattend.CustomUnattend, Custom: []byte("<unattend")}, "not a valid answer file"},
		"custom wrong ns": {unattend.Options{Method: unattend.CustomUnattend, Custom: []byte("<unattend/>")}, "not <unattend> in"},
		"custom no logon": {unattend.Options{Method: unattend.AutoAdminLogonOnce, Custom: []byte(`<unattend xmlns="urn:schemas-microsoft-com:unattend"/>`)}, "no oobeSystem AutoLogon"},
		"custom empty rs": {unattend.Options{Method: unattend.CustomUnattend, Custom: []byte(`<unattend xmlns="urn:schemas-microsoft-com:unattend"><settings pass="specialize"><component name="Microsoft-Windows-Deployment" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35"><RunSynchronous/></component></settings></unattend>`)}, "empty <RunSynchronous/>"},
		"bad arch":        {unattend.Options{Arch: "mips"}, "not amd64"},
		"custom bad pass": {unattend.Options{Method: unattend.CustomUnattend, Custom: []byte(`<unattend xmlns="urn:schemas-microsoft-com:unattend"><settings pass="later"/></unattend>`)}, "not a Windows Setup pass"},
		"long command":    {unattend.Options{Command: strings.Repeat("x", 260)}, "259"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := unattend.Build(c.o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want %q", err, c.want)
			}
		})
	}
	if _, err := unattend.ParseMethod("4"); err == nil {
		t.Error("ContinueMethod 4 accepted")
	}
}

func TestDomainJoinBlob(t *testing.T) {
	blob := "ARAIAMzMzMyQAQAAAAAAAAAAAgABAAAA"
	u := utf16.Encode([]rune(blob + "\x00"))
	file := []byte{0xFF, 0xFE}
	for _, c := range u {
		file = binary.LittleEndian.AppendUint16(file, c)
	}
	for name, in := range map[string][]byte{"utf-16 with BOM": file, "ascii with newline": []byte(blob + "\r\n")} {
		if got, err := unattend.DomainJoinBlob(in); err != nil || got != blob {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
	if _, err := unattend.DomainJoinBlob([]byte("not base64 !!")); err == nil {
		t.Error("garbage accepted as a domain join blob")
	}
}
