"""Container names: validation, Docker-style random names, and the name registry.

names/<name> is a symlink to the container id.  Creating a symlink is atomic and fails if
the name exists, so two concurrent `run --name x` can never both win.  A link whose
container directory is gone (a crash between the two steps) is stale and may be reclaimed.
"""
import os

from ..errors import Conflict, InvalidArgument

_FIRST = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_REST = _FIRST | set("_.-")

_ADJECTIVES = (
    "admiring adoring agitated amazing angry awesome blissful bold boring brave busy charming "
    "clever cool compassionate competent confident crazy dazzling determined eager ecstatic "
    "elastic elated elegant eloquent epic fervent festive flamboyant focused friendly frosty "
    "gallant gifted goofy gracious happy hardcore heuristic hopeful hungry infallible inspiring "
    "jolly jovial keen kind laughing loving lucid magical modest musing mystifying naughty "
    "nervous nice nifty nostalgic objective optimistic peaceful pedantic pensive practical "
    "priceless quirky quizzical relaxed reverent romantic sad serene sharp silly sleepy stoic "
    "strange stupefied suspicious sweet tender thirsty trusting unruffled upbeat vibrant "
    "vigilant vigorous wizardly wonderful xenodochial youthful zealous zen"
).split()
_SURNAMES = (
    "albattani allen almeida archimedes ardinghelli aryabhata austin babbage banach bardeen "
    "bartik bassi bell benz bhabha bhaskara blackwell bohr booth borg bose boyd brahmagupta "
    "brattain brown carson chandrasekhar shannon clarke colden cori cray curie darwin davinci "
    "dijkstra dubinsky easley einstein elion engelbart euclid euler fermat fermi feynman "
    "franklin galileo gates goldberg goldstine goldwasser golick goodall hamilton hawking "
    "heisenberg hermann hodgkin hoover hopper hugle hypatia jackson jang jennings jepsen "
    "johnson joliot jones kalam kare keller kepler khorana kilby kirch knuth kowalevski lalande "
    "lamarr lamport leakey leavitt lewin lichterman liskov lovelace lumiere mahavira mayer "
    "mccarthy mcclintock mclean mcnulty meitner mendel mestorf minsky mirzakhani morse "
    "murdock napier nash neumann newton nightingale nobel noether northcutt noyce panini pare "
    "pasteur payne perlman pike poincare poitras ptolemy raman ramanujan ride ritchie roentgen "
    "rosalind saha sammet shaw shirley shockley sinoussi snyder spence stallman stonebraker "
    "swanson swartz swirles tesla thompson torvalds turing varahamihira visvesvaraya wescoff "
    "williams wilson wing wozniak wright yalow yonath"
).split()


def validate(name):
    if (len(name) < 2 or len(name) > 128 or name[0] not in _FIRST
            or any(ch not in _REST for ch in name[1:])):
        raise InvalidArgument("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed" % name)
    return name


def random_name(retry=0):
    raw = os.urandom(3)
    name = "%s_%s" % (_ADJECTIVES[raw[0] % len(_ADJECTIVES)], _SURNAMES[(raw[1] << 8 | raw[2]) % len(_SURNAMES)])
    if retry:
        name += str(raw[2] % 10)
    return name


class Registry:
    def __init__(self, root):
        self.dir = os.path.join(root, "names")
        self.containers_dir = os.path.join(root, "containers")

    def lookup(self, name):
        """The id a name points to, or None (stale links count as free)."""
        try:
            cid = os.readlink(os.path.join(self.dir, name))
        except (FileNotFoundError, OSError):
            return None
        if not os.path.isdir(os.path.join(self.containers_dir, cid)):
            return None
        return cid

    def claim(self, name, cid):
        link = os.path.join(self.dir, name)
        for _ in range(2):
            try:
                os.symlink(cid, link)
                return
            except FileExistsError:
                owner = self.lookup(name)
                if owner is not None:
                    raise Conflict('Conflict. The container name "/%s" is already in use by container "%s". '
                                   "You have to remove (or rename) that container to be able to reuse that name."
                                   % (name, owner)) from None
                _unlink_if_points_to(link, os.readlink(link) if os.path.lexists(link) else None)
            except FileNotFoundError:
                os.makedirs(self.dir, exist_ok=True)
        raise Conflict('the container name "/%s" is being claimed concurrently' % name)

    def claim_random(self, cid):
        for retry in range(10):
            name = random_name(retry)
            try:
                self.claim(name, cid)
                return name
            except Conflict:
                continue
        raise Conflict("could not find a free random name")

    def sweep(self, tmp_dir):
        """Drop links a crash left: no container, and no live create of it in tmp_dir."""
        try:
            names = os.listdir(self.dir)
            staging = os.listdir(tmp_dir) if os.path.isdir(tmp_dir) else []
        except FileNotFoundError:
            return
        for name in names:
            link = os.path.join(self.dir, name)
            try:
                cid = os.readlink(link)
            except OSError:
                continue
            if os.path.isdir(os.path.join(self.containers_dir, cid)):
                continue
            if any(s.startswith("create-") and s.endswith(cid) and
                   os.path.exists("/proc/" + s.split("-")[1]) for s in staging):
                continue
            _unlink_if_points_to(link, cid)

    def release(self, name, cid):
        _unlink_if_points_to(os.path.join(self.dir, name), cid)


def _unlink_if_points_to(link, cid):
    try:
        if cid is not None and os.readlink(link) == cid:
            os.unlink(link)
    except (FileNotFoundError, OSError):
        pass
