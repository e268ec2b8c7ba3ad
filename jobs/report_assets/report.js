
(function(){
  "use strict";
  var results = document.getElementById('results');
  var sortSel = document.getElementById('sort');
  var minScore = document.getElementById('minscore');
  var minOut = document.getElementById('minscore-out');
  var kindSel = document.getElementById('kind');
  var docFilter = document.getElementById('docfilter');
  var countEl = document.getElementById('count');
  var emptyEl = document.getElementById('empty');
  var verdictSel = document.getElementById('verdict');
  // A large report (jobs.report_html, from DEFER_FROM_CARDS cards on) carries its cards as data
  // (<script id="rs-items">: each item's HTML and, per card, [score, kind, documents, pair key, verdict, relation, channel])
  // and draws PAGE of them at a time: sort and filters run over the data of every card, the page
  // shows the matching ones, and an item's HTML is parsed only when its page is drawn.
  var itemsBlob = document.getElementById('rs-items');
  var paged = !!itemsBlob;
  var PAGE = parseInt(document.body.dataset.pageCards || '0', 10) || 100;
  var data = paged ? JSON.parse(itemsBlob.textContent) : [];
  var order = data.map(function(_, i){ return i; });  // items in sort order
  var matching = [];  // items with a card passing the filters, in sort order
  var page = 0;
  var pageInfo = document.getElementById('pageinfo');
  var prevBtn = document.getElementById('prevpage'), nextBtn = document.getElementById('nextpage');
  var total = paged ? data.reduce(function(n, it){ return n + it.c.length; }, 0) : document.querySelectorAll('.card').length;

  function keyOf(el, mode){
    if (mode === 'doc') return el.dataset.docKey || '';
    return parseFloat(el.dataset.score || '0');
  }
  function cmp(mode){
    return function(x, y){
      var a = keyOf(x, mode), b = keyOf(y, mode);
      if (mode === 'doc') { var c = a < b ? -1 : a > b ? 1 : 0; if (c) return c; return parseFloat(y.dataset.score) - parseFloat(x.dataset.score); }
      return mode === 'score-asc' ? a - b : b - a;
    };
  }
  function applySort(){
    var mode = sortSel.value;
    if (paged) {
      var view = function(i){ return {dataset: {score: String(data[i].s), docKey: data[i].d}}; };
      var c = cmp(mode);
      order.sort(function(x, y){ return c(view(x), view(y)) || x - y; });
      return;  // drawn by applyFilter (the page's groups sort their cards when drawn)
    }
    var items = Array.prototype.slice.call(results.querySelectorAll(':scope > .item'));
    items.sort(cmp(mode)).forEach(function(el){ results.insertBefore(el, emptyEl); });
    sortGroups(results);
  }
  function sortGroups(root){
    Array.prototype.forEach.call(root.querySelectorAll('.gcards'), function(box){
      Array.prototype.slice.call(box.children).sort(cmp(sortSel.value)).forEach(function(el){ box.appendChild(el); });
    });
  }
  function applyFilter(){
    var min = parseFloat(minScore.value);
    minOut.textContent = min.toFixed(2);
    var kind = kindSel.value;
    var needle = docFilter.value.trim().toLowerCase();
    var vf = verdictSel ? verdictSel.value : 'all';
    var shown = 0;
    if (paged) {
      matching = [];
      order.forEach(function(i){
        var ok = data[i].c.map(function(c){
          return c[0] >= min - 1e-9 && (kind === 'all' || c[1] === kind || c[5] === kind || (kind === 'channel' && c[6] === 1)) && (!needle || c[2].indexOf(needle) !== -1) &&
                 verdictMatches(c[4] || '', vf);
        });
        data[i].ok = ok;
        var n = ok.filter(Boolean).length;
        if (n) { matching.push(i); shown += n; }
      });
      countEl.textContent = shown + ' of ' + total + ' pairs';
      emptyEl.style.display = shown ? 'none' : '';
      drawPage();
      return;
    }
    Array.prototype.forEach.call(results.querySelectorAll('.item'), function(item){
      var any = false;
      Array.prototype.forEach.call(item.querySelectorAll('.card'), function(card){
        var ok = parseFloat(card.dataset.score) >= min - 1e-9 &&
                 (kind === 'all' || card.dataset.kind === kind || card.dataset.relation === kind ||
                  (kind === 'channel' && card.dataset.channel === '1')) &&
                 (!needle || (card.dataset.docs || '').indexOf(needle) !== -1) &&
                 verdictMatches(card.dataset.verdict || '', vf);
        card.hidden = !ok;
        if (ok) { any = true; shown++; }
      });
      item.hidden = !any;
    });
    countEl.textContent = shown + ' of ' + total + ' pairs';
    emptyEl.style.display = shown ? 'none' : '';
  }
  // The view state lives in the URL fragment (#sort=doc&min=0.9&kind=inter&doc=name) so a
  // filtered view can be bookmarked or shared as a link to this file.
  function readHash(){
    var h = (location.hash || '').replace(/^#/, '');
    page = 0;
    if (!h) return;
    h.split('&').forEach(function(kv){
      var i = kv.indexOf('='); if (i < 0) return;
      var k = decodeURIComponent(kv.slice(0, i)), v = decodeURIComponent(kv.slice(i + 1).replace(/\+/g, ' '));
      if (k === 'sort' && ['score-desc','score-asc','doc'].indexOf(v) !== -1) sortSel.value = v;
      else if (k === 'min' && isFinite(parseFloat(v))) minScore.value = String(Math.max(0, Math.min(1, parseFloat(v))));
      else if (k === 'kind' && ['all','inter','intra','same figure','same paper','channel'].indexOf(v) !== -1) kindSel.value = v;
      else if (k === 'doc') docFilter.value = v;
      else if (k === 'page' && isFinite(parseInt(v, 10))) page = Math.max(0, parseInt(v, 10) - 1);
      else if (k === 'verdict' && verdictSel && verdictSel.querySelector('option[value="' + v.replace(/[^a-z-]/g, '') + '"]')) verdictSel.value = v;
    });
  }
  function writeHash(){
    var parts = [];
    if (sortSel.value !== 'score-desc') parts.push('sort=' + encodeURIComponent(sortSel.value));
    if (parseFloat(minScore.value) > 0) parts.push('min=' + encodeURIComponent(minScore.value));
    if (kindSel.value !== 'all') parts.push('kind=' + encodeURIComponent(kindSel.value));
    if (docFilter.value) parts.push('doc=' + encodeURIComponent(docFilter.value));
    if (verdictSel && verdictSel.value !== 'open') parts.push('verdict=' + encodeURIComponent(verdictSel.value));
    if (paged && page > 0) parts.push('page=' + (page + 1));
    try { history.replaceState(null, '', parts.length ? '#' + parts.join('&') : location.pathname + location.search); } catch (e) {}
  }
  sortSel.addEventListener('change', function(){ page = 0; applySort(); applyFilter(); writeHash(); });
  function verdictMatches(v, filter){
    if (filter === 'all') return true;
    if (filter === 'open') return v !== 'dismissed';
    if (filter === 'none') return v === '';
    return v === filter;
  }
  [minScore, kindSel, docFilter].concat(verdictSel ? [verdictSel] : []).forEach(function(el){
    el.addEventListener('input', function(){ page = 0; applyFilter(); writeHash(); });
    el.addEventListener('change', function(){ page = 0; applyFilter(); writeHash(); });
  });

  // Verdicts: confirm / dismiss / unsure per card. In report.html ("local" mode) they are
  // kept in this browser (localStorage) and "export verdicts" downloads them as JSON for
  // `reusescan review STORE --import FILE`; in the review app ("server" mode) each one is
  // POSTed to the app, which writes it into STORE/verdicts.sqlite.
  var mode = document.body.dataset.verdictMode || 'local';
  var statusEl = document.getElementById('vstatus');
  var reviewerEl = document.getElementById('reviewer');
  var PREFIX = 'reusescan:verdict:';
  function store(){ try { return window.localStorage; } catch (e) { return null; } }
  function say(text){ if (statusEl) statusEl.textContent = text; }
  if (reviewerEl) {
    var ls0 = store();
    try { reviewerEl.value = (ls0 && ls0.getItem('reusescan:reviewer')) || ''; } catch (e) {}
    reviewerEl.addEventListener('change', function(){ var ls = store(); try { if (ls) ls.setItem('reusescan:reviewer', reviewerEl.value.trim()); } catch (e) {} });
  }
  function showVerdict(card, v){
    card.dataset.verdict = v;
    var st = card.querySelector('.vstate'); if (st) st.textContent = v || 'none';
    Array.prototype.forEach.call(card.querySelectorAll('.vbtn'), function(b){ b.classList.toggle('on', b.dataset.set === v); });
  }
  function entryFor(card, el, v){
    var rec = {};
    try { rec = JSON.parse(el.dataset.record || '{}'); } catch (e) {}
    var note = card.querySelector('.vnote');
    rec.verdict = v;
    rec.note = note ? note.value : '';
    rec.reviewer = reviewerEl ? reviewerEl.value.trim() : '';
    rec.decided_at = new Date().toISOString();
    return rec;
  }
  // A card is one finding: its figure pair and the panel pairs nested in it (.fpair). A verdict
  // on the card is the verdict on each of them, so a later run treats the whole reuse alike.
  function members(card){
    return [card].concat(Array.prototype.slice.call(card.querySelectorAll('.fpair'))).filter(function(el){ return el.dataset.pairKey; });
  }
  function showMember(el, v){
    el.dataset.verdict = v;
    var st = el.querySelector('.fverdict'); if (st) st.textContent = v || 'no verdict';
  }
  function setVerdict(card, v){
    var key = card.dataset.pairKey;
    if (!key) { say('this pair has no content hash: no verdict possible'); return; }
    var els = members(card);
    var recs = els.map(function(el){ return entryFor(card, el, v); });
    function shown(){
      showVerdict(card, v); els.forEach(function(el){ if (el !== card) showMember(el, v); });
      (byKey[key] || []).forEach(function(c){ c[4] = v; });
    }
    if (mode === 'server') {
      say('saving…');
      var chain = Promise.resolve();
      recs.forEach(function(rec){
        chain = chain.then(function(){
          return fetch('api/verdict', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(rec)})
            .then(function(r){ if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); });
        });
      });
      chain.then(function(){ shown(); say('saved: ' + v); applyFilter(); })
        .catch(function(e){ say('not saved: ' + e.message); });
    } else {
      var ls = store();
      try { if (ls) recs.forEach(function(rec, i){ ls.setItem(PREFIX + els[i].dataset.pairKey, JSON.stringify(rec)); }); }
      catch (e) { say('could not keep the verdict in this browser'); }
      shown(); say('kept in this browser: ' + v + ' (export verdicts to save them in the store)');
      applyFilter();
    }
  }
  function savedVerdict(key){
    if (mode === 'server' || !key) return null;
    var ls = store(), saved = null;
    try { saved = ls && ls.getItem(PREFIX + key); } catch (e) {}
    if (!saved) return null;
    try { return JSON.parse(saved); } catch (e) { return null; }
  }
  // A card's controls and its flicker comparison (a large report's cards when their page is first drawn).
  function initCard(card){
    var rec = savedVerdict(card.dataset.pairKey);
    if (rec) { showVerdict(card, rec.verdict || ''); var n = card.querySelector('.vnote'); if (n) n.value = rec.note || ''; }
    showVerdict(card, card.dataset.verdict || '');
    Array.prototype.forEach.call(card.querySelectorAll('.vbtn'), function(b){
      b.addEventListener('click', function(){ current = card; mark(); setVerdict(card, b.dataset.set); });
    });
    // Flicker comparison: hovering/tapping "B aligned to A" shows A in its place.
    var al = card.querySelector('img.ialigned');
    var a = card.querySelector('img.ithumb');
    if (!al || !a) return;
    var own = null, box = al.parentNode;  // read when first needed: a large report fills pictures in later
    function showA(){ if (own === null) own = al.getAttribute('src'); al.setAttribute('src', a.getAttribute('src')); box.classList.add('flick'); }
    function showB(){ if (own !== null) al.setAttribute('src', own); box.classList.remove('flick'); }
    box.addEventListener('mouseenter', showA);
    box.addEventListener('mouseleave', showB);
    box.addEventListener('click', function(){ if (box.classList.contains('flick')) showB(); else showA(); });
  }
  var byKey = {};  // a large report: pair key -> the card data whose verdict the filters read
  data.forEach(function(item){
    item.c.forEach(function(c){
      if (!c[3]) return;
      (byKey[c[3]] = byKey[c[3]] || []).push(c);
      var rec = savedVerdict(c[3]);
      if (rec) c[4] = rec.verdict || '';
    });
  });
  if (!paged) Array.prototype.forEach.call(document.querySelectorAll('.card'), initCard);

  // Pages of a large report: each item's element is built from its HTML once, when first shown.
  var built = {};
  function itemEl(i){
    if (!built[i]) {
      var t = document.createElement('template');
      t.innerHTML = data[i].h;
      var el = t.content.firstElementChild;
      Array.prototype.forEach.call(el.querySelectorAll('.card'), function(card, n){ card.dataset.n = String(n); initCard(card); });
      built[i] = el;
    }
    return built[i];
  }
  function pageCount(){ return Math.max(1, Math.ceil(matching.length / PAGE)); }
  function drawPage(){
    page = Math.max(0, Math.min(page, pageCount() - 1));
    Array.prototype.slice.call(results.querySelectorAll(':scope > .item')).forEach(function(el){ el.remove(); });
    var frag = document.createDocumentFragment();
    matching.slice(page * PAGE, (page + 1) * PAGE).forEach(function(i){
      var el = itemEl(i), any = false;
      Array.prototype.forEach.call(el.querySelectorAll('.card'), function(card){
        var ok = !!data[i].ok[parseInt(card.dataset.n, 10)];
        card.hidden = !ok; any = any || ok;
      });
      el.hidden = !any;
      frag.appendChild(el);
    });
    sortGroups(frag);
    results.insertBefore(frag, emptyEl);
    if (pageInfo) pageInfo.textContent = 'page ' + (page + 1) + ' of ' + pageCount();
    if (prevBtn) prevBtn.disabled = page === 0;
    if (nextBtn) nextBtn.disabled = page >= pageCount() - 1;
    document.body.dataset.page = String(page + 1);
    if (window.reusescanFillImages) window.reusescanFillImages(results);
  }
  function turnPage(step){
    var next = Math.max(0, Math.min(pageCount() - 1, page + step));
    if (next === page) return false;
    page = next; drawPage(); writeHash();
    results.scrollIntoView({block: 'start'});
    return true;
  }
  if (prevBtn) prevBtn.addEventListener('click', function(){ turnPage(-1); });
  if (nextBtn) nextBtn.addEventListener('click', function(){ turnPage(1); });
  function exportVerdicts(){
    var ls = store(), out = [];
    if (ls) for (var i = 0; i < ls.length; i++) {
      var k = ls.key(i);
      if (k && k.indexOf(PREFIX) === 0) { try { out.push(JSON.parse(ls.getItem(k))); } catch (e) {} }
    }
    return JSON.stringify({format: 'reusescan-verdicts/1', exported_at: new Date().toISOString(), verdicts: out}, null, 1);
  }
  window.reusescanExportVerdicts = exportVerdicts;
  var exportBtn = document.getElementById('export');
  if (exportBtn) exportBtn.addEventListener('click', function(){
    var a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([exportVerdicts()], {type: 'application/json'}));
    a.download = 'verdicts-' + new Date().toISOString().slice(0, 10) + '.json';
    document.body.appendChild(a); a.click(); a.remove();
  });

  // Keyboard queue: j/k next/previous visible card, c/d/u decide (then move on).
  var current = null;
  function drawn(){ return Array.prototype.slice.call(results.querySelectorAll('.card')); }
  function visible(){ return drawn().filter(function(c){ return !c.hidden && !(c.closest('.item') || c).hidden; }); }
  function mark(){
    drawn().forEach(function(c){ c.classList.toggle('current', c === current); });
    document.body.dataset.current = current ? current.dataset.rank : '';
  }
  function move(step){
    var vis = visible(); if (!vis.length) { current = null; mark(); return; }
    var i = vis.indexOf(current);
    if (paged && i >= 0 && i + step >= vis.length && turnPage(1)) { current = null; move(1); return; }  // on to the next page
    if (paged && i >= 0 && i + step < 0 && turnPage(-1)) { current = null; move(-1); return; }
    i = i < 0 ? (step > 0 ? 0 : vis.length - 1) : Math.max(0, Math.min(vis.length - 1, i + step));
    current = vis[i]; mark();
    current.scrollIntoView({block: 'nearest'});
  }
  document.addEventListener('keydown', function(ev){
    var t = ev.target;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (t && (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA')) return;
    var k = ev.key;
    if (k === 'j') move(1);
    else if (k === 'k') move(-1);
    else if (k === 'c' || k === 'd' || k === 'u') {
      if (!current) move(1);
      if (!current) return;
      var card = current;
      move(1);
      setVerdict(card, {c: 'confirmed', d: 'dismissed', u: 'unsure'}[k]);
    } else return;
    ev.preventDefault();
  });

  window.addEventListener('hashchange', function(){ readHash(); applySort(); applyFilter(); });
  readHash();
  applySort();
  applyFilter();

  // Self-check used by the browser test: how many images decoded.
  function countImages(){
    var ok = 0, broken = 0;
    Array.prototype.forEach.call(document.images, function(img){
      if (img.complete && img.naturalWidth > 0) ok++; else broken++;
    });
    document.body.setAttribute('data-images-ok', String(ok));
    document.body.setAttribute('data-images-broken', String(broken));
  }
  window.reusescanCountImages = countImages;  // recounted once a large report has filled in its pictures
  window.addEventListener('load', countImages);
  if (document.readyState === 'complete') countImages();
})();
