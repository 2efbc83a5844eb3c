// auditty web: the player page of `replay serve`.
//
// The page (server-rendered) holds
//   <div id="player" data-cast="/api/sessions/ID/cast" data-start="SECONDS"
//        [data-segments="/api/sessions/ID/cast/segments"]></div>
//   <ol id="commands"><li><a class="command" href="…?t=S" data-offset="S">cmd</a></li>…</ol>
//   <button id="next-command" type="button">
// This script creates the asciinema-player there, starting at data-start, turns the
// command links into seeks (the links still work without script, and with a modifier
// key), makes "next command" seek to the first command after the current time, marks
// the command being played with aria-current="true", puts the commands on the player's
// timeline as markers, and adds a speed control.
//
// No framework and no build step; loaded as a file, so it runs under
// `script-src 'self'` (the player itself needs 'wasm-unsafe-eval' for its terminal
// emulator). `window.auditty.player` is the player, for tests and the console.
(function () {
  'use strict';

  // How far (seconds) before a command the playhead may be and still count as on it:
  // a seek to an offset can land a hair before it.
  var EPSILON = 0.05;
  // How often the current command is brought up to date while playing (ms).
  var TICK = 250;

  var el = document.getElementById('player');
  if (!el || !el.dataset.cast) {
    return; // not a player page, or a sealed session the server cannot open
  }
  if (typeof window.AsciinemaPlayer === 'undefined') {
    showError(el, 'The player script (asciinema-player.min.js) did not load.');
    return;
  }

  var links = Array.prototype.slice.call(document.querySelectorAll('#commands a.command'));
  var offsets = links.map(function (a) {
    return Number(a.dataset.offset);
  });
  var start = Number(el.dataset.start);
  if (!isFinite(start) || start < 0) {
    start = 0;
  }

  var markers = [];
  links.forEach(function (a, i) {
    if (isFinite(offsets[i])) {
      markers.push([offsets[i], (a.textContent || '').trim().slice(0, 80)]);
    }
  });

  var speed = 1;
  var player;
  window.auditty = {};

  // (Re)creates the player at `at` seconds: the player takes its speed only at creation,
  // so a change of speed builds a new one where the old one was.
  //
  // A long session (the page gives data-segments) plays as a segmented recording: the
  // player fetches the index, then only the segments the playhead needs, each with a
  // snapshot of the screen, so it starts before the session has arrived. The markers
  // are then in the index (the server puts the commands there), since the player takes
  // no markers option for segmented recordings.
  function build(at, autoPlay) {
    var segmented = !!el.dataset.segments;
    var source = segmented ? { url: el.dataset.segments, format: 'segmented' } : el.dataset.cast;
    var options = {
      startAt: at,
      autoPlay: autoPlay,
      preload: true,
      fit: 'width',
      speed: speed,
    };
    if (!segmented) {
      options.markers = markers;
    }
    player = window.AsciinemaPlayer.create(source, el, options);
    window.auditty.segmented = segmented;
    window.auditty.player = player;
    window.auditty.speed = speed;
    if (!autoPlay && at > 0) {
      // Paused, the player shows its first frame until told where to be.
      player.seek(at);
    }
  }

  try {
    build(start, true);
  } catch (e) {
    showError(el, 'The player could not start: ' + e);
    return;
  }

  var next = document.getElementById('next-command');
  var current = -1;

  // The index of the last command at or before time t, or -1.
  function commandAt(t) {
    var found = -1;
    for (var i = 0; i < offsets.length; i++) {
      if (offsets[i] <= t + EPSILON) {
        found = i;
      }
    }
    return found;
  }

  // The index of the first command after time t, or -1.
  function commandAfter(t) {
    for (var i = 0; i < offsets.length; i++) {
      if (offsets[i] > t + EPSILON) {
        return i;
      }
    }
    return -1;
  }

  function now() {
    var t = player.getCurrentTime();
    return typeof t === 'number' && isFinite(t) ? t : start;
  }

  function mark(t) {
    var i = commandAt(t);
    if (i !== current) {
      if (current >= 0 && links[current]) {
        links[current].removeAttribute('aria-current');
      }
      if (i >= 0) {
        links[i].setAttribute('aria-current', 'true');
        keepVisible(links[i]);
      }
      current = i;
    }
    if (next) {
      next.disabled = commandAfter(t) < 0;
    }
  }

  // Scrolls the command list (not the page) so that the current command shows.
  function keepVisible(a) {
    var list = document.getElementById('commands');
    if (!list || list.scrollHeight <= list.clientHeight) {
      return;
    }
    var item = a.closest('li') || a;
    var top = item.offsetTop - list.offsetTop;
    if (top < list.scrollTop || top + item.offsetHeight > list.scrollTop + list.clientHeight) {
      list.scrollTop = Math.max(0, top - list.clientHeight / 3);
    }
  }

  // Seeks to command i, keeps playing from there and puts its link in the address bar
  // (replaceState: the back button still leaves the page rather than stepping through
  // commands).
  function jumpTo(i) {
    var t = offsets[i];
    if (!isFinite(t)) {
      return;
    }
    if (links[i].href) {
      try {
        window.history.replaceState(null, '', links[i].href);
      } catch (e) {
        // A file:// page or another origin: the seek still happens.
      }
    }
    mark(t);
    Promise.resolve(player.seek(t)).then(function () {
      mark(now());
      return player.play();
    });
  }

  links.forEach(function (a, i) {
    a.addEventListener('click', function (ev) {
      if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) {
        return; // a new tab or window: let the browser follow the link
      }
      ev.preventDefault();
      jumpTo(i);
    });
  });

  if (next) {
    next.addEventListener('click', function () {
      var i = commandAfter(now());
      if (i >= 0) {
        jumpTo(i);
      }
    });
  }

  // A speed control beside "next command" (0.5× to 8×).
  if (next && next.parentNode) {
    var label = document.createElement('label');
    label.className = 'speed';
    label.textContent = 'Speed ';
    var select = document.createElement('select');
    select.id = 'speed';
    [0.5, 1, 1.5, 2, 4, 8].forEach(function (v) {
      var o = document.createElement('option');
      o.value = String(v);
      o.textContent = v + '×';
      o.selected = v === speed;
      select.appendChild(o);
    });
    select.addEventListener('change', function () {
      var v = Number(select.value);
      if (!isFinite(v) || v <= 0 || v === speed) {
        return;
      }
      var at = now();
      var playing = !paused;
      speed = v;
      player.dispose();
      build(at, playing);
      watch();
    });
    label.appendChild(select);
    next.parentNode.insertBefore(label, next.nextSibling);
  }

  // Whether playback is paused (by the user or at the end), for rebuilding the player.
  var paused = false;
  function watch() {
    paused = false;
    player.addEventListener('play', function () {
      paused = false;
    });
    player.addEventListener('playing', function () {
      paused = false;
    });
    player.addEventListener('pause', function () {
      paused = true;
    });
    player.addEventListener('ended', function () {
      paused = true;
    });
  }
  watch();

  mark(start);
  window.setInterval(function () {
    mark(now());
  }, TICK);

  function showError(container, text) {
    var p = document.createElement('p');
    p.className = 'error';
    p.setAttribute('role', 'alert');
    p.textContent = text;
    container.appendChild(p);
  }
})();
