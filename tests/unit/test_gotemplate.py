"""Go's text/template as docker's --format uses it: template, data, expected output.

The expected values are Go's (text/template with docker's function map), as the docker CLI
prints them for the same data; errors are docker's exit 1 with a template error.
"""
import pytest

from lxcbox.cli.gotemplate import TemplateError, render

INSPECT = {
    "Id": "abc", "Name": "/web",
    "Config": {"Cmd": ["/bin/sh", "-c", "echo hi"], "Entrypoint": None, "Env": ["A=1", "PATH=/bin"],
               "Labels": {"k": "v", "com.example.role": "db", "a": "1"}, "ExposedPorts": {"80/tcp": {}},
               "Tty": False, "StopSignal": "SIGUSR1"},
    "State": {"Status": "running", "Running": True, "Pid": 42, "ExitCode": 0},
    "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "10.1.0.2"}, "back": {"IPAddress": "10.2.0.3"}}},
    "Mounts": [{"Type": "volume", "Destination": "/data"}, {"Type": "bind", "Destination": "/src"}],
    "Args": ["-c", "echo hi"],
}

CORPUS = [
    ("{{.Name}}", "/web"),
    ("{{.State.Status}} {{.State.Pid}}", "running 42"),
    ("{{.State.Running}}", "true"),
    ("{{.Config.Tty}}", "false"),
    ("{{.Config.Entrypoint}}", "[]"),
    ("{{.Config.Cmd}}", "[/bin/sh -c echo hi]"),
    ("{{json .Config.Cmd}}", '["/bin/sh","-c","echo hi"]'),
    ("{{.Config.Labels}}", "map[a:1 com.example.role:db k:v]"),
    ("{{json .Config.Labels}}", '{"k":"v","com.example.role":"db","a":"1"}'),
    ('{{index .Config.Labels "com.example.role"}}', "db"),
    ('{{index .Config.Labels "missing"}}', ""),
    ("{{.Config.Labels.k}}", "v"),
    ("{{.Config.Labels.missing}}", "<no value>"),
    ("{{.Config.ExposedPorts}}", "map[80/tcp:{}]"),
    ("{{index .Config.Cmd 0}}", "/bin/sh"),
    ("{{range .Config.Env}}{{.}};{{end}}", "A=1;PATH=/bin;"),
    ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}},{{end}}", "a=1,com.example.role=db,k=v,"),
    ("{{range $i, $e := .Config.Env}}{{$i}}:{{$e}} {{end}}", "0:A=1 1:PATH=/bin "),
    ("{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", "10.2.0.3 10.1.0.2 "),
    ("{{range .Missing}}x{{else}}empty{{end}}", None),  # a missing field of a struct: an error
    ("{{range .Config.Entrypoint}}x{{else}}none{{end}}", "none"),
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ("{{if eq .State.Status \"exited\"}}e{{else if eq .State.Status \"running\"}}r{{else}}o{{end}}", "r"),
    ("{{if and .State.Running (eq .State.ExitCode 0)}}ok{{end}}", "ok"),
    ("{{if not .Config.Tty}}no tty{{end}}", "no tty"),
    ("{{with .Config.StopSignal}}sig={{.}}{{end}}", "sig=SIGUSR1"),
    ("{{with .Config.Entrypoint}}x{{else}}no entrypoint{{end}}", "no entrypoint"),
    ('{{join .Args ","}}', "-c,echo hi"),
    ('{{split "a:b:c" ":"}}', "[a b c]"),
    ('{{upper .State.Status}} {{lower "ABC"}} {{title "hello world"}}', "RUNNING abc Hello World"),
    ('{{printf "%s-%d" .State.Status .State.Pid}}', "running-42"),
    ('{{printf "%5s|" "ab"}}', "   ab|"),
    ("{{len .Mounts}} {{len .Config.Labels}}", "2 3"),
    ("{{range .Mounts}}{{if eq .Type \"volume\"}}{{.Destination}}{{end}}{{end}}", "/data"),
    ('{{println "a" "b"}}', "a b\n"),
    ("{{$n := .Name}}{{$n}}", "/web"),
    ("{{.Name | printf \"%q\"}}", '"/web"'),
    ("{{(index .Mounts 1).Destination}}", "/src"),
    ("a {{- \" b \" -}} c", "a b c"),
    ("{{/* a comment */}}x", "x"),
    ("{{.Nope}}", None),
    ("{{.Config.Nope}}", None),
    ("{{index .Config.Cmd 9}}", None),
    ("{{nosuchfunc .Name}}", None),
    ("{{if .Name}}unclosed", None),
]


@pytest.mark.parametrize("template,expected", CORPUS)
def test_corpus(template, expected):
    if expected is None:
        with pytest.raises(TemplateError):
            render(template, INSPECT)
    else:
        assert render(template, INSPECT) == expected


def test_methods_and_numbers():
    row = {"Label": lambda k: {"role": "db"}.get(k, ""), "N": 3, "F": 0.5, "Nil": None}
    assert render('{{.Label "role"}}|{{.Label "x"}}|', row) == "db||"
    assert render("{{.N}} {{.F}} {{.Nil}}", row) == "3 0.5 <nil>"


def test_nil_slices_print_empty_and_encode_null():
    # Go: a nil slice prints as [] and json-encodes as null; a nil map as map[] and null
    cfg = {"Config": {"OnBuild": None, "Labels": None, "Env": ["A=1"]}}
    assert render("{{.Config.OnBuild}}|{{json .Config.OnBuild}}|{{json .Config.Labels}}|{{json .Config.Env}}",
                  cfg) == '[]|null|null|["A=1"]'
