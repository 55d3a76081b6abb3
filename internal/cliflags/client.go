package cliflags

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/urfave/cli/v3"
)

// ClientFlags are the flags of every command that talks to the registrar:
// --registrar, --credential-file, --ca and --allow-insecure. Each but
// --allow-insecure reads its environment variable when the command line
// does not give it, so a shell or a container sets them once.
// CONSORTIUM_CREDENTIAL, if set, is the credential itself and wins over
// --credential-file. who names the credential in the help ("member",
// "administrator", "member or administrator"); defCred is
// --credential-file's default.
func ClientFlags(getenv Getenv, defCred, who string) []cli.Flag {
	return []cli.Flag{
		String("registrar", registrarclient.DefaultURL, "registrar URL, or several comma-separated URLs of replicas of one registrar (tried in turn on failure)", getenv.Source("CONSORTIUM_REGISTRAR")),
		String("credential-file", defCred, "file holding the "+who+" credential (CONSORTIUM_CREDENTIAL, if set, is the credential itself and wins)", getenv.Source("CONSORTIUM_CREDENTIAL_FILE")),
		String("ca", "", "PEM CA file for an https registrar", getenv.Source("CONSORTIUM_CA")),
		Bool("allow-insecure", false, "allow sending the credential over plain http to a non-loopback host"),
	}
}

// Client is the client flags' values (ClientFlags) as a command parsed
// them.
type Client struct {
	URL, CredFile, CA string
	Insecure          bool
}

// ReadClient reads the client flags of cmd.
func ReadClient(cmd *cli.Command) Client {
	return Client{URL: cmd.String("registrar"), CredFile: cmd.String("credential-file"), CA: cmd.String("ca"), Insecure: cmd.Bool("allow-insecure")}
}

// Credential is CONSORTIUM_CREDENTIAL or the content of --credential-file.
func (c Client) Credential(getenv Getenv) (string, error) {
	if cred := getenv("CONSORTIUM_CREDENTIAL"); cred != "" {
		return cred, nil
	}
	b, err := os.ReadFile(c.CredFile)
	if err != nil {
		return "", fmt.Errorf("reading the credential: %v (pass --credential-file, or set CONSORTIUM_CREDENTIAL)", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Client is the registrar client the flags describe; log (nil: none) hears
// of failovers and of a credential file that changed.
func (c Client) Client(getenv Getenv, log *slog.Logger) (*registrarclient.Client, error) {
	cred, err := c.Credential(getenv)
	if err != nil {
		return nil, err
	}
	file := c.CredFile
	if getenv("CONSORTIUM_CREDENTIAL") != "" {
		file = ""
	}
	return registrarclient.New(registrarclient.Config{URL: c.URL, Credential: cred, CredentialFile: file, CAFile: c.CA, AllowInsecure: c.Insecure, Logger: log})
}
